"""Where a stored evaluation's time goes: CPU time of this thread per stage of
``evaluate_and_store`` (and wall time), over a few runs on the bench's demo scenes.

``--new-process``: each run is a new process evaluating a copy never evaluated before (what
``bench_eval.py``'s headline times). Not a bench (``make bench`` runs ``bench_*.py`` only): it wraps the stages' functions with
timers, which costs a little itself. The database's share (writing the per-label values, in a
thread, while occlusion and ``accumulate`` run) is the wall time of ``write values``; its CPU
is mongod's, not counted here.
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
    ("runs._Store", "register", "register the run, declare fields"),
    ("results", "measure_reusing", "masks -> areas, GT boxes (box-local)"),
    ("results", "block_ious", "IoUs of the masks whose boxes meet"),
    ("engine", "evaluate", "COCOeval evaluate (C++ core) + matches"),
    ("results", "outcomes_from_matches", "per-label outcomes"),
    ("results", "compute_boundary_iou", "boundary IoU of the matches"),
    ("runs", "_write_values", "write values (thread; mongod's work)"),
    ("results", "gt_occlusion", "occlusion"),
    ("runs", "_declare_fields", "  of register: declare fields"),
    ("runs", "declare_revision_fields", "declare revision fields (before the write)"),
    ("chunks", "accumulate", "accumulate + summarize (C++, by part)"),
    ("runs._Store", "finish", "store results, sidebar (after the write)"),
)


def _install_timers(times) -> None:
    from maskreview.core.evaluation import chunks, coco, engine, outcomes, results, runs

    modules = {"coco": coco, "results": results, "engine": engine, "runs": runs, "chunks": chunks,
               "runs._Store": runs._Store, "outcomes": outcomes}

    def timed(owner, name: str, label: str) -> None:
        f = getattr(owner, name, None)
        if f is None:
            return

        @functools.wraps(f)
        def wrapper(*a, **kw):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return f(*a, **kw)
            finally:
                times[label][0] += time.perf_counter() - wall
                times[label][1] += time.thread_time() - cpu

        setattr(owner, name, wrapper)

    for owner, name, label in STAGES:
        timed(modules[owner], name, label)


def _print(rows, title: str) -> None:
    print(title)
    print(f"{'stage':<48}" + "".join(f"{'run ' + str(i + 1):>16}" for i in range(len(rows))))
    for label in [s[2] for s in STAGES]:
        print(f"{label:<48}" + "".join(f"{t.get(label, (0, 0))[1]:>8.3f} ({t.get(label, (0, 0))[0]:.3f})"
                                       for _, _, t in rows))
    print(f"{'evaluate_and_store':<48}" + "".join(f"{c:>8.3f} ({w:.3f})" for w, c, _ in rows))


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

    from maskreview.core.evaluation import runs

    times: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    _install_timers(times)
    ds = fo.load_dataset(name)
    wall, cpu = time.perf_counter(), time.thread_time()
    runs.evaluate_and_store(ds, eval_key="profile")
    print(json.dumps([time.perf_counter() - wall, time.thread_time() - cpu, dict(times)]))


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
                     "CPU s of the main thread (wall s)")
        return 0
    times: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
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
