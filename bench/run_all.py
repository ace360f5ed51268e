"""Run every ``bench/bench_*.py`` in its own process and print one table of their results.

Each bench prints its own lines; lines that start with ``RESULT`` (``RESULT name | value |
target | met``) are collected into the final table. ``make bench`` runs this.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    only = set(argv if argv is not None else sys.argv[1:])
    rows, failed = [], []
    for script in sorted(HERE.glob("bench_*.py")):
        if only and script.stem not in only and script.stem.removeprefix("bench_") not in only:
            continue
        print(f"== {script.name}", flush=True)
        start = time.time()
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        print(proc.stdout, end="")
        if proc.returncode != 0:
            failed.append(script.name)
            print(proc.stderr[-3000:], file=sys.stderr)
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT"):
                rows.append([cell.strip() for cell in line[len("RESULT"):].split("|")])
        print(f"   ({time.time() - start:.0f} s)\n")
    if rows:
        width = [max(len(r[i]) if i < len(r) else 0 for r in rows + [["benchmark", "value", "target", "met"]]) for i in range(4)]
        header = ["benchmark", "value", "target", "met"]
        print("  ".join(h.ljust(w) for h, w in zip(header, width)))
        for r in rows:
            print("  ".join((r[i] if i < len(r) else "").ljust(width[i]) for i in range(4)))
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
