"""Evaluation speed: maskreview (results stored) vs pycocotools called directly vs FiftyOne.

Synthetic demo scenes with perturbed-GT predictions, in a throw-away database. Timed:

- maskreview: ``evaluate_and_store`` from the dataset: reading labels, RLE encoding, COCOeval,
  per-label outcomes, occlusion, boundary IoU, and writing everything under an eval key;
- pycocotools: ``COCO`` + ``loadRes`` + ``evaluate/accumulate/summarize`` on in-memory GT and
  results already in COCO form (its best case: no reading, no encoding, nothing stored);
- FiftyOne: ``evaluate_detections(method="coco", use_masks=True, compute_mAP=True, eval_key=...)``.

Targets: <= 1.5x pycocotools' time, >= 20x faster than FiftyOne. Best of ``--repeat`` runs for
the first two, one run for FiftyOne. ``--n`` shrinks the set.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


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
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-fiftyone", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="maskreview-bench-eval-"))
    try:
        _setup_db(root)
        import copy

        from maskreview.core.demo import write_demo_dataset
        from maskreview.core.evaluation import coco, runs, synthetic
        from maskreview.core.sources import open_source

        t = time.perf_counter()
        ds = open_source(write_demo_dataset(root / "demo", n=args.n, seed=11), name="bench-eval")
        synthetic.write_perturbed_predictions(ds, seed=1)
        n_gt, n_pred = ds.count("ground_truth.detections"), ds.count("predictions.detections")
        print(f"{args.n} images, {n_gt} GT instances, {n_pred} predictions (setup {time.perf_counter() - t:.1f} s)")

        inputs = coco.coco_inputs(ds, "ground_truth", "predictions", "segm")
        ours_t, ours_bare_t, coco_t = [], [], []
        for r in range(args.repeat):
            t = time.perf_counter()
            ours = runs.evaluate_and_store(ds, eval_key=f"bench{r}")
            ours_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            runs.evaluate_and_store(ds, eval_key=f"bare{r}", boundary=False, occlusion=False)
            ours_bare_t.append(time.perf_counter() - t)
            gt, results = copy.deepcopy(inputs.gt), copy.deepcopy(inputs.results)
            t = time.perf_counter()
            direct = _pycocotools(gt, results, "segm")
            coco_t.append(time.perf_counter() - t)
        fo_t = fo_map = None
        if not args.skip_fiftyone:
            t = time.perf_counter()
            fo_res = ds.evaluate_detections("predictions", gt_field="ground_truth", method="coco", use_masks=True,
                                            compute_mAP=True, eval_key="fo")
            fo_t, fo_map = time.perf_counter() - t, fo_res.mAP()
        ours_s, bare_s, coco_s = min(ours_t), min(ours_bare_t), min(coco_t)
        print(f"{'path':<44} {'seconds':>8} {'mAP':>10}")
        print(f"{'maskreview (stored, +occlusion, +boundary IoU)':<44} {ours_s:8.3f} {ours.summary['mAP']:10.6f}")
        print(f"{'maskreview (stored, no occlusion/boundary)':<44} {bare_s:8.3f} {ours.summary['mAP']:10.6f}")
        print(f"{'pycocotools direct (in-memory COCO inputs)':<44} {coco_s:8.3f} {direct.stats[0]:10.6f}")
        if fo_t is not None:
            print(f"{'FiftyOne evaluate_detections':<44} {fo_t:8.3f} {fo_map:10.6f}")
        same = abs(ours.summary["mAP"] - direct.stats[0]) < 1e-9 and (fo_map is None or abs(fo_map - direct.stats[0]) < 1e-9)
        print(f"same mAP: {same}")
        ratio = ours_s / coco_s
        print(f"RESULT eval time vs pycocotools ({args.n} img, all stored) | {ratio:.2f}x | <= 1.5x | {ratio <= 1.5}")
        ratio_bare = bare_s / coco_s
        print(f"RESULT eval time vs pycocotools ({args.n} img, FiftyOne fields only) | {ratio_bare:.2f}x | <= 1.5x | "
              f"{ratio_bare <= 1.5}")
        if fo_t is not None:
            speedup = fo_t / ours_s
            print(f"RESULT eval speed-up vs FiftyOne ({args.n} img) | {speedup:.1f}x | >= 20x | {speedup >= 20}")
        return 0 if same else 1
    finally:
        with contextlib.suppress(Exception):
            from maskreview.core.store import fiftyone

            fiftyone().delete_datasets("bench-eval")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
