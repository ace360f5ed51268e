"""Scale (#17.4): 100,000 samples / 1,000,000 instances, the rows ``make bench`` reports.

Runs ``bench_gui.py --only open10k --samples 100000`` (a process of its own): the dataset built
in bulk, then in the real window (offscreen): the first image after ``set_dataset``, RSS after
browsing, the filename search (few hits, many hits), the tag filter, evaluate-all with progress
and Cancel, an evaluation of 10,000 of the samples and the sort by FP over all 100,000 rows.
Targets: first image <= 2 s, RSS <= 2 GB, search / tag filter / sort <= 300 ms each.

The dataset is built in a temporary folder (about 2 minutes, 450 MB) unless
``BENCH_SCALE_ROOT`` names a folder to keep it in between runs (built once there).
``BENCH_SCALE_SAMPLES`` changes the size. Arguments are passed on to ``bench_gui.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    samples = os.environ.get("BENCH_SCALE_SAMPLES", "100000")
    root = os.environ.get("BENCH_SCALE_ROOT")
    cmd = [sys.executable, str(HERE / "bench_gui.py"), "--only", "open10k", "--samples", samples, "--scale",
           *(["--root", root] if root else []), *argv]
    start = time.perf_counter()
    code = subprocess.run(cmd).returncode
    print(f"scale: the whole part took {time.perf_counter() - start:.0f} s (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
