"""Where a stored evaluation's time goes: CPU time of this thread per stage of
``evaluate_and_store`` (and wall time), over a few runs on the bench's demo scenes.

``--new-process``: each run is a new process evaluating a copy never evaluated before (what
``bench_eval.py``'s headline times). Not a bench (``make bench`` runs ``bench_*.py`` only): it wraps the stages' functions with
timers, which costs a little itself. The database's share (writing the per-label values, in a
thread, while occlusion and ``accumulate`` run) is the wall time of ``write values``; with
``--new-process`` each stage also shows mongod's CPU over it (its threads' run time from
``/proc``: the stages overlapping the writer get the write's), and the totals the writer
thread's and the rest of the process's CPU besides the main thread's.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import functools
import shutil
import sys
import tempfile
import time
from pathlib import Path

STAGES = (  # (module, function, label) in the order they run
    ("coco", "read_detections", "read labels (query, BSON, inflate masks)"),
    ("coco", "coco_inputs", "COCO inputs (the read above included)"),
    ("runs._Store", "register", "register the run (+ its sidebar group)"),
    ("results", "measure_reusing", "masks -> areas, GT boxes (box-local)"),
    ("results", "block_ious", "IoUs of the masks whose boxes meet"),
    ("engine", "evaluate", "COCOeval evaluate (C++ core) + matches"),
    ("results", "outcomes_from_matches", "per-label outcomes"),
    ("results", "compute_boundary_iou", "boundary IoU of the matches"),
    ("runs", "_declare_fields", "declare the key's + revision fields (one merge)"),
    ("runs", "declare_revision_fields", "  check the revision fields' types"),
    ("runs", "_write_values", "write values (thread; mongod's work)"),
    ("results", "gt_occlusion", "occlusion"),
    ("chunks", "accumulate", "accumulate + summarize (C++, by part)"),
    ("runs._Store", "finish", "results file (writer runs), wait, run stored"),
)


def _install_timers(times, mongod_cpu=None) -> None:
    from maskreview.core.evaluation import chunks, coco, engine, outcomes, results, runs

    modules = {"coco": coco, "results": results, "engine": engine, "runs": runs, "chunks": chunks,
               "runs._Store": runs._Store, "outcomes": outcomes}

    def timed(owner, name: str, label: str) -> None:
        f = getattr(owner, name, None)
        if f is None:
            return

        @functools.wraps(f)
        def wrapper(*a, **kw):
            wall, cpu, db = time.perf_counter(), time.thread_time(), mongod_cpu() if mongod_cpu else 0.0
            try:
                return f(*a, **kw)
            finally:
                times[label][0] += time.perf_counter() - wall
                times[label][1] += time.thread_time() - cpu
                times[label][2] += (mongod_cpu() - db) if mongod_cpu else 0.0

        setattr(owner, name, wrapper)

    for owner, name, label in STAGES:
        timed(modules[owner], name, label)


def _print(rows, title: str) -> None:
    """``rows``: ``(wall, cpu, times)`` per run, or (new processes) ``(wall, cpu, times,
    process cpu, mongod cpu)``: then each cell is ``main thread cpu (wall) / mongod cpu``."""
    db = len(rows[0]) > 3
    print(title)
    width = 24 if db else 16
    print(f"{'stage':<48}" + "".join(f"{'run ' + str(i + 1):>{width}}" for i in range(len(rows))))
    for label in [s[2] for s in STAGES]:
        cells = []
        for row in rows:
            wall, cpu, mongod = row[2].get(label, (0, 0, 0))
            cells.append(f"{cpu:>8.3f} ({wall:.3f})" + (f" / {mongod:.3f}" if db else ""))
        print(f"{label:<48}" + "".join(cells))
    print(f"{'evaluate_and_store':<48}" + "".join(f"{r[1]:>8.3f} ({r[0]:.3f})" + (f" / {r[4]:.3f}" if db else "")
                                                  for r in rows))
    if db:
        print(f"{'  the writer thread and the rest (process - main)':<48}"
              + "".join(f"{r[3] - r[1]:>8.3f}" + " " * (width - 8) for r in rows))
        print(f"{'  in all: process + mongod':<48}" + "".join(f"{r[3] + r[4]:>8.3f}" + " " * (width - 8) for r in rows))


def _child(root: Path, name: str) -> None:
    """One first evaluation of a never-evaluated copy, in this new process, with the timers."""
    import json

    from bench_eval import _setup_db

    _setup_db(root)
    from maskreview.core.store import fiftyone

    fo = fiftyone()
    import faster_coco_eval  # noqa: F401
    import fiftyone.utils.eval.coco  # noqa: F401
    import pycocotools.cocoeval  # noqa: F401

    import benchkit
    from fiftyone.core.odm.database import get_db_client

    from maskreview.core.evaluation import runs

    ds = fo.load_dataset(name)
    mongod = benchkit.mongod_pid(root / "db")
    times: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    _install_timers(times, (lambda: _run_time(mongod)) if mongod else None)
    get_db_client().admin.command("fsync")  # earlier writes checkpointed first, as bench_eval does
    wall, cpu, process, db = time.perf_counter(), time.thread_time(), time.process_time(), _run_time(mongod)
    runs.evaluate_and_store(ds, eval_key="profile")
    print(json.dumps([time.perf_counter() - wall, time.thread_time() - cpu, dict(times),
                      time.process_time() - process, _run_time(mongod) - db]))


def _run_time(pid: int | None) -> float:
    """CPU seconds a process's threads have run (``benchkit.thread_times``: schedstat, in ns,
    finer than ``cpu_times``' clock ticks, which most stages are shorter than); 0 without it."""
    import benchkit

    return sum(ran for ran, _ in benchkit.thread_times(pid).values()) if pid else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--new-process", action="store_true",
                        help="each run: a new process evaluating a copy never evaluated before (bench_eval's headline)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.child:
        _child(Path(args.child[0]), args.child[1])
        return 0
    root = Path(tempfile.mkdtemp(prefix="maskreview-profile-eval-"))
    atexit.register(shutil.rmtree, root, True)
    from bench_eval import _setup_db

    _setup_db(root)
    from maskreview.core.demo import write_demo_dataset
    from maskreview.core.evaluation import runs, synthetic
    from maskreview.core.sources import open_source

    ds = open_source(write_demo_dataset(root / "demo", n=args.n, seed=11), name="profile-eval")
    synthetic.write_perturbed_predictions(ds, seed=1)
    rows = []
    if args.new_process:
        import json
        import os
        import subprocess

        ds.persistent = True
        for r in range(args.runs):
            ds.clone(f"profile-eval-{r}", persistent=True)
        for r in range(args.runs):
            out = subprocess.run([sys.executable, __file__, "--child", str(root), f"profile-eval-{r}"],
                                 capture_output=True, text=True, env=dict(os.environ))
            lines = [line for line in out.stdout.splitlines() if line.startswith("[")]
            if not lines:
                raise RuntimeError(out.stderr[-2000:])
            rows.append(json.loads(lines[-1]))
        _print(rows, f"{args.n} images; a new process per run, a copy never evaluated before; "
                     "CPU s of the main thread (wall s) / mongod's CPU s")
        return 0
    times: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    _install_timers(times)
    for r in range(args.runs + 1):  # the first (a new key) is left out
        times.clear()
        wall, cpu = time.perf_counter(), time.thread_time()
        runs.evaluate_and_store(ds, eval_key="profile")
        if r:
            rows.append((time.perf_counter() - wall, time.thread_time() - cpu, dict(times)))
    _print(rows, f"{args.n} images; reruns in one process; CPU s of this thread (wall s), per run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
