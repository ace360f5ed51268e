"""Evaluation speed: maskreview (results stored) vs pycocotools called directly vs FiftyOne.

Synthetic demo scenes with perturbed-GT predictions, in a throw-away database. Timed:

- maskreview: ``evaluate_and_store`` from the dataset: reading labels, RLE encoding, COCOeval
  (faster-coco-eval's C++ core, ``engine.py``), per-label outcomes, occlusion, boundary IoU, and
  writing everything under an eval key; and the same without occlusion and boundary IoU;
- pycocotools: ``COCO`` + ``loadRes`` + ``evaluate/accumulate/summarize`` on in-memory GT and
  results already in COCO form (its best case: no reading, no encoding, nothing stored);
- FiftyOne: ``evaluate_detections(method="coco", use_masks=True, compute_mAP=True, eval_key=...)``.

Targets (issue 17): <= 0.7x pycocotools' time, >= 50x faster than FiftyOne, same mAP. Best of ``--repeat`` runs for
the first two, one run for FiftyOne. Each path re-evaluates under its own eval key, as a user
re-evaluates after fixing labels (new keys each round would grow every label by four fields a
round and make later rounds slower); the first round, a new key, is shown too, and reruns with
the in-memory reuse (``evaluation/cache.py``) cleared first, as the first rerun in a new process
(what is stored is read with the labels, so unchanged values are not written again).
``--n`` sets the number of images (default 1000). Each
time is given as wall time and as CPU time (this process, its workers and the database's mongod):
on a machine shared with other jobs, wall time includes waiting for a core. The first run
(a new eval key) is shown as well.
maskreview pauses Python's garbage collector while it evaluates; pycocotools is timed as a user
calls it and, for reference, with the collector paused too.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import benchkit  # bench/ is on sys.path when a bench runs as a script


def _setup_db(root: Path) -> None:
    os.environ["FIFTYONE_DATABASE_DIR"] = str(root / "db")
    os.environ.pop("FIFTYONE_DATABASE_URI", None)
    os.environ["MASKREVIEW_DATA_DIR"] = str(root / "data")
    from maskreview.core import store

    store.configure()


def _pycocotools(gt: dict, results: list, iou_type: str):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        e = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="demo images (default 1000)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-fiftyone", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="maskreview-bench-eval-"))
    atexit.register(shutil.rmtree, root, True)  # registered before FiftyOne: runs after its mongod stops
    try:
        _setup_db(root)
        import copy

        from maskreview.core.demo import write_demo_dataset
        from maskreview.core.evaluation import cache, coco, runs, synthetic
        from maskreview.core.gcpause import gc_paused
        from maskreview.core.sources import open_source

        t = time.perf_counter()
        ds = open_source(write_demo_dataset(root / "demo", n=args.n, seed=11), name="bench-eval")
        synthetic.write_perturbed_predictions(ds, seed=1)
        n_gt, n_pred = ds.count("ground_truth.detections"), ds.count("predictions.detections")
        print(f"{args.n} images, {n_gt} GT instances, {n_pred} predictions (setup {time.perf_counter() - t:.1f} s)")

        inputs = coco.coco_inputs(ds, "ground_truth", "predictions", "segm")
        clock = lambda: benchkit.Clock(benchkit.mongod_pid(root / "db"))
        times = {"ours": [], "bare": [], "coco": [], "coco_nogc": []}
        for r in range(args.repeat):
            with clock() as c:
                ours = runs.evaluate_and_store(ds, eval_key="bench")
            times["ours"].append(c)
            with clock() as c:
                runs.evaluate_and_store(ds, eval_key="bare", boundary=False, occlusion=False)
            times["bare"].append(c)
            for key, paused in (("coco", contextlib.nullcontext()), ("coco_nogc", gc_paused())):
                gt, results = copy.deepcopy(inputs.gt), copy.deepcopy(inputs.results)
                with paused, clock() as c:
                    direct = _pycocotools(gt, results, "segm")
                times[key].append(c)
        cold = []  # as in a new process: nothing reused in memory (the stored values are read)
        for r in range(min(args.repeat, 3)):
            cache.clear()
            with clock() as c:
                runs.evaluate_and_store(ds, eval_key="bench")
            cold.append(c)
        fo_c = fo_map = None
        if not args.skip_fiftyone:
            with clock() as fo_c:
                fo_res = ds.evaluate_detections("predictions", gt_field="ground_truth", method="coco",
                                                use_masks=True, compute_mAP=True, eval_key="fo")
            fo_map = fo_res.mAP()
        times["cold"] = cold
        best = {k: (min(c.wall for c in v), min(c.cpu for c in v)) for k, v in times.items()}
        first = times["ours"][0]
        rows = [("maskreview (stored, +occlusion, +boundary IoU)", *best["ours"], f"{ours.summary['mAP']:.6f}"),
                ("  the same, first run (new eval key)", first.wall, first.cpu, ""),
                (f"  the same, rerun with nothing in memory (best of {len(cold)})", *best["cold"], ""),
                ("maskreview (stored, no occlusion/boundary)", *best["bare"], f"{ours.summary['mAP']:.6f}"),
                ("pycocotools direct (in-memory COCO inputs)", *best["coco"], f"{direct.stats[0]:.6f}"),
                ("pycocotools direct, garbage collector paused", *best["coco_nogc"], f"{direct.stats[0]:.6f}")]
        if fo_c is not None:
            rows.append(("FiftyOne evaluate_detections", fo_c.wall, fo_c.cpu, f"{fo_map:.6f}"))
        benchkit.table(("path", "wall s", "CPU s", "mAP"), rows, first_width=62)
        print("CPU s = this process + the database's mongod; wall s = elapsed")
        same = abs(ours.summary["mAP"] - direct.stats[0]) < 1e-9 and (fo_map is None or abs(fo_map - direct.stats[0]) < 1e-9)
        print(f"same mAP: {same}")
        for unit, i in (("wall", 0), ("CPU", 1)):
            ratio = best["ours"][i] / best["coco"][i]
            benchkit.result(f"eval {unit} time vs pycocotools ({args.n} img, all stored, best of {args.repeat})",
                            f"{ratio:.2f}x", "<= 0.7x", ratio <= 0.7)
            ratio = best["cold"][i] / best["coco"][i]
            benchkit.result(f"eval {unit} time vs pycocotools, rerun in a new process ({args.n} img, best of {len(cold)})",
                            f"{ratio:.2f}x", "<= 0.7x", ratio <= 0.7)
        if fo_c is not None:
            for unit, i, fo_t in (("wall", 0, fo_c.wall), ("CPU", 1, fo_c.cpu)):
                speedup = fo_t / best["ours"][i]
                benchkit.result(f"eval {unit} speed-up vs FiftyOne ({args.n} img)", f"{speedup:.1f}x", ">= 50x",
                                speedup >= 50)
                speedup = fo_t / best["cold"][i]
                benchkit.result(f"eval {unit} speed-up vs FiftyOne, rerun in a new process ({args.n} img)",
                                f"{speedup:.1f}x", ">= 50x", speedup >= 50)
        return 0 if same else 1
    finally:
        with contextlib.suppress(Exception):
            from maskreview.core.store import fiftyone

            fiftyone().delete_datasets("bench-eval")


if __name__ == "__main__":
    sys.exit(main())
