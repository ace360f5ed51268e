"""Giving the memory a bulk job freed back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None (another C library: nothing to do)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def give_back() -> bool:
    """Return the free pages of malloc's heap to the system (``malloc_trim(0)``). glibc gives
    back only the free end of its heap by itself: after an evaluation of 100,000 samples the
    heap held ~0.5 GB free behind a few live blocks, counted in the process's RSS until the next
    run reused it (BENCHMARKS.md, "evaluate all 100k"). Whether any page went back."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


_giving: list[threading.Thread] = []


def give_back_later() -> threading.Thread | None:
    """:func:`give_back` on a thread of its own (ctypes lets go of the GIL): right after a
    cancelled 100,000-sample run it returned ~1 GB of pages, 0.6 s at load 3, which the Cancel
    would otherwise wait for. None when one is still at it (what was freed since waits for the
    next call)."""
    if _giving and _giving[-1].is_alive():
        return None
    thread = threading.Thread(target=give_back, name="maskreview-give-back", daemon=True)
    _giving[:] = [thread]
    thread.start()
    return thread


def free_later(box: list) -> threading.Thread:
    """Empty ``box`` on a thread of its own, so that what only it held is freed there: the
    traceback of a cancelled 100,000-sample run holds every table of it (~10^7 objects), 1.2 s
    to free at load 2-4, which the Cancel waited for (bench_eval_scale, round 3b). The caller
    must hold none of the objects itself (only the box), or the last reference may be its own.
    Freeing holds the GIL: other threads still get their turns (the switch interval)."""
    thread = threading.Thread(target=box.clear, name="maskreview-free", daemon=True)
    _freeing[:] = [t for t in _freeing if t.is_alive()] + [thread]
    thread.start()
    return thread


_freeing: list[threading.Thread] = []


def wait_freed(timeout: float | None = None) -> None:
    """Until what :func:`free_later` was given is freed (tests: the garbage it leaves, if any)."""
    for thread in list(_freeing):
        thread.join(timeout)
