"""Run every ``bench/bench_*.py`` in its own process and print one table of their results.

Each bench prints its own lines; lines that start with ``RESULT`` (``RESULT name | value |
target | met``) are collected into the final table. ``make bench`` runs this. The GPU figure
(``gpu_r50.py``, issue #17.5) runs when the machine has a CUDA GPU; otherwise its row says so.
The table ends with the machine's load average before and after, and how many rows are not met.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _has_cuda() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                           capture_output=True, text=True)
    return probe.stdout.strip() == "True"


def main(argv: list[str] | None = None) -> int:
    only = set(argv if argv is not None else sys.argv[1:])
    rows, failed = [], []
    load_before, began = os.getloadavg(), time.time()
    scripts = sorted(HERE.glob("bench_*.py"))
    if not only or "gpu_r50" in only:
        if _has_cuda():
            scripts.append(HERE / "gpu_r50.py")
        else:
            rows.append(["R50-FPN s/img on a GPU, decode and write included", "no CUDA GPU on this machine",
                         "<= 0.043", "n/a"])
    for script in scripts:
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
    load_after = os.getloadavg()
    if rows:
        width = [max(len(r[i]) if i < len(r) else 0 for r in rows + [["benchmark", "value", "target", "met"]]) for i in range(4)]
        header = ["benchmark", "value", "target", "met"]
        print("  ".join(h.ljust(w) for h, w in zip(header, width)))
        for r in rows:
            print("  ".join((r[i] if i < len(r) else "").ljust(width[i]) for i in range(4)))
    not_met = [r for r in rows if len(r) > 3 and r[3].lower() in ("no", "false")]
    print(f"\n{len(rows)} rows, {len(not_met)} not met; {time.time() - began:.0f} s on {os.cpu_count()} cores; "
          f"load average before {' '.join(f'{v:.2f}' for v in load_before)}, "
          f"after {' '.join(f'{v:.2f}' for v in load_after)}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
