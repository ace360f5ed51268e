"""Argument types for the ``maskreview`` command: every number and output folder checked at parse time.

A bad argument stops the command before anything is opened or written, with one line on stderr
(``maskreview: error: argument --n: ...``) and exit code 2, like every other bad input.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from maskreview.core.errors import one_line


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the whole usage block first)."""

    def error(self, message: str):
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        hint = f"maskreview {command} --help" if command else "maskreview --help"
        self.exit(2, f"maskreview: error: {one_line(message)} (see '{hint}')\n")


def int_in(low: int, high: int | None = None):
    """A whole number in ``low..high`` (no upper bound when ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range: give {_span(low, high)}")
        return value

    parse.__name__ = f"int {_span(low, high)}"
    return parse


def _span(low, high) -> str:
    return f"{low}..{high}" if high is not None else f"at least {low}"


def fraction(low_open: bool = False, high_open: bool = False):
    """A number in [0, 1], each end excluded when asked."""
    span = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")

    def parse(text: str) -> float:
        value = _finite(text)
        if value < 0 or value > 1 or (low_open and value == 0) or (high_open and value == 1):
            raise argparse.ArgumentTypeError(f"{text} is out of range: give a number in {span}")
        return value

    parse.__name__ = f"fraction {span}"
    return parse


def positive_float(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is out of range: give a number above 0")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def output_folder(text: str) -> str:
    """A folder to write into: it may not exist yet, but it (or the nearest existing parent) is no file."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
            break
    return text


COUNT = int_in(1, 1_000_000)
BATCH = int_in(1, 1024)
SEED = int_in(0, 2**32 - 1)
IMAGE_SIZE = int_in(32, 8192)  # demo scenes: smaller leaves no room for shapes, larger is no demo
