"""The evaluation (faster-coco-eval's C++ core, ``core/evaluation/engine.py``) gives pycocotools'
numbers: every per-label outcome, matched id and IoU, the per-sample counts, the values stored
under an eval key, all 12 summary stats, per-class AP and the PR curves, on the demo set and on
crafted edge cases (crowd regions, an empty image, images with only GT or only predictions, more
than 100 detections of a class in an image, small/medium/large objects, a class nobody annotated,
tied scores).

pycocotools is the reference, run in this process on the same COCO inputs. Precision may differ
in the last bit (pycocotools divides by ``tp + fp + spacing(1)``), so precision and the stats
are compared to 1e-15; everything else must be equal.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from helpers_coco import perturbed_demo
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maskreview.core.evaluation import coco, runs
from maskreview.core.evaluation import results as R

W, H = 200, 160


def _reference(ds, iou_type: str, iou_thrs=None):
    """pycocotools on the same inputs: its evaluator and the inputs' label ids."""
    inputs = coco.coco_inputs(ds, "ground_truth", "predictions", iou_type)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = inputs.gt
        gt.createIndex()
        e = COCOeval(gt, gt.loadRes(inputs.results), iou_type)
        if iou_thrs is not None:
            e.params.iouThrs = np.asarray(iou_thrs, float)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e, inputs


def _expected_outcomes(e, t: int, n_gt: int, n_pred: int) -> dict:
    """Per-label outcome, match and IoU from pycocotools' evalImgs at IoU index ``t``, area all."""
    out = {"pred_outcome": np.full(n_pred, "ignored", object), "pred_match": np.full(n_pred, -1),
           "pred_iou": np.full(n_pred, np.nan), "gt_outcome": np.full(n_gt, "fn", object),
           "gt_match": np.full(n_gt, -1), "gt_iou": np.full(n_gt, np.nan)}
    for a in e.cocoGt.dataset["annotations"]:
        if a["iscrowd"]:
            out["gt_outcome"][a["id"] - 1] = "ignored"
    p = e.params
    n_img, n_area = len(p.imgIds), len(p.areaRng)
    for k, cat in enumerate(p.catIds):
        for i, img in enumerate(p.imgIds):
            ev = e.evalImgs[k * n_area * n_img + i]
            if ev is None:
                continue
            cols = {g["id"]: j for j, g in enumerate(e._gts[img, cat])}
            for row, d in enumerate(ev["dtIds"]):
                m, ignored = int(ev["dtMatches"][t][row]), bool(ev["dtIgnore"][t][row])
                if m == 0:
                    out["pred_outcome"][d - 1] = "fp"
                    continue
                iou = float(np.asarray(e.ious[img, cat])[row, cols[m]])
                out["pred_outcome"][d - 1] = "ignored" if ignored else "tp"
                out["pred_match"][d - 1], out["pred_iou"][d - 1] = m - 1, iou
                if not ignored:
                    out["gt_outcome"][m - 1], out["gt_match"][m - 1], out["gt_iou"][m - 1] = "tp", d - 1, iou
    return out


def _check_identity(ds, iou_type: str, iou_thresh: float = 0.5, t: int = 0, iou_thrs=None) -> R.EvalResults:
    e, inputs = _reference(ds, iou_type, iou_thrs)
    res = R.compute(ds, iou_type=iou_type, iou_thresh=iou_thresh)
    want = _expected_outcomes(e, t, len(res.gt), len(res.pred))
    for table in ("pred", "gt"):
        got = getattr(res, table)
        assert got.outcome.tolist() == want[f"{table}_outcome"].tolist(), table
        np.testing.assert_array_equal(got.match, want[f"{table}_match"], err_msg=f"{table}.match")
        np.testing.assert_array_equal(got.iou, want[f"{table}_iou"], err_msg=f"{table}.iou")
    assert res.gt.label_id.tolist() == inputs.gt_label_ids and res.pred.label_id.tolist() == inputs.pred_label_ids
    per_sample = {name: np.bincount(table.img[want[f"{side}_outcome"] == name], minlength=len(res.sample_ids))
                  for name, table, side in (("tp", res.pred, "pred"), ("fp", res.pred, "pred"), ("fn", res.gt, "gt"))}
    for name, counts in per_sample.items():
        np.testing.assert_array_equal(res.per_sample[name], counts, err_msg=name)
    if iou_thrs is None:  # the summary of COCO's own thresholds
        np.testing.assert_allclose([res.summary[k] for k in coco.STAT_NAMES], e.stats, rtol=0, atol=1e-15)
        ref_ap = coco.per_class_ap(e)
        assert res.summary["per_class"].keys() == ref_ap.keys()
        np.testing.assert_allclose(list(res.summary["per_class"].values()), list(ref_ap.values()), rtol=0, atol=1e-15)
        np.testing.assert_allclose(res.precision, np.transpose(e.eval["precision"][:, :, :, 0, -1], (0, 2, 1)),
                                   rtol=0, atol=1e-15)
        np.testing.assert_array_equal(res.pr_scores, np.transpose(e.eval["scores"][:, :, :, 0, -1], (0, 2, 1)))
        np.testing.assert_array_equal(res.recall, e.eval["recall"][:, :, 0, -1])
        np.testing.assert_array_equal(res.pred.area, [a["area"] for a in e.cocoDt.dataset["annotations"]])
    return res


def _check_stored(ds, res: R.EvalResults, key: str) -> None:
    """The values under ``key`` in the database are the results' (labels by id)."""
    runs.evaluate_and_store(ds, iou_type=res.iou_type, eval_key=key)
    ds.reload()
    for field, table, other in (("ground_truth", res.gt, res.pred), ("predictions", res.pred, res.gt)):
        ids = [i for per in ds.values(f"{field}.detections.id") for i in (per or [])]
        got = {name: [v for per in ds.values(f"{field}.detections.{key}{name}") for v in (per or [])]
               for name in ("", "_id", "_iou")}
        row = {label_id: r for r, label_id in enumerate(table.label_id.tolist())}
        order = [row[i] for i in ids]
        assert got[""] == table.outcome[order].tolist(), field
        assert got["_id"] == [other.label_id[m] if m >= 0 else "" for m in table.match[order].tolist()], field
        iou = table.iou[order]
        assert got["_iou"] == [None if np.isnan(v) else float(v) for v in iou.tolist()], field
    for name in ("tp", "fp", "fn"):
        assert ds.values(f"{key}_{name}") == res.per_sample[name].tolist(), name
    assert ds.load_evaluation_results(key).mAP() == pytest.approx(res.summary["mAP"], abs=1e-15)


# ------------------------------------------------------------------------------------ the demo set

@pytest.fixture(scope="module")
def demo(demo_coco):
    with perturbed_demo(demo_coco, "eval-identity-demo", seed=5) as dataset:
        yield dataset


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_demo_set_gives_pycocotools_numbers_and_stores_them(demo, iou_type):
    res = _check_identity(demo, iou_type)
    assert (res.pred.outcome == "tp").sum() > 10 and (res.pred.outcome == "fp").sum() > 0
    _check_stored(demo, res, f"idt_{iou_type}")


def test_demo_set_at_other_coco_thresholds_and_off_the_grid(demo):
    _check_identity(demo, "segm", iou_thresh=0.75, t=5)
    # 0.6 is not one of COCO's ten: COCOeval's rule applied to its IoU matrices (matching.coco_greedy)
    _check_identity(demo, "segm", iou_thresh=0.6, t=0, iou_thrs=[0.6])


# ------------------------------------------------------------------------------ crafted edge cases

def _blob(h: int, w: int, rng) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    r = ((yy - h / 2 + rng.uniform(-1, 1)) / (h / 2.1)) ** 2 + ((xx - w / 2 + rng.uniform(-1, 1)) / (w / 2.1)) ** 2
    mask = r <= 1
    mask[h // 2, w // 2] = True
    return mask


def _det(fo, rng, label: str, x: float, y: float, w: float, h: float, score: float | None = None, crowd: bool = False,
         shift: float = 0.0):
    extra = {"iscrowd": 1} if crowd else {}
    return fo.Detection(label=label, bounding_box=[(x + shift) / W, (y + shift) / H, w / W, h / H],
                        mask=_blob(int(h), int(w), rng), confidence=score, **extra)


@pytest.fixture(scope="module")
def crafted(fo):
    rng = np.random.default_rng(3)
    d = lambda *a, **k: _det(fo, rng, *a, **k)

    def empty(label, x, y, w, h, score=None):  # a zero-area mask
        return fo.Detection(label=label, bounding_box=[x / W, y / H, w / W, h / H], mask=np.zeros((h, w), bool),
                            confidence=score)

    def small(label, x, y, w, h, score=None):  # a mask of half its box's size
        return fo.Detection(label=label, bounding_box=[x / W, y / H, w / W, h / H], mask=_blob(h // 2, w // 2, rng),
                            confidence=score)
    scenes = [
        # small (< 32²), medium and large objects, a crowd region with detections inside it, an FP
        ([d("a", 5, 5, 20, 20), d("a", 40, 10, 50, 50), d("a", 75, 40, 120, 115), d("b", 0, 100, 70, 60, crowd=True)],
         [d("a", 5, 5, 20, 20, 0.9, shift=1), d("a", 40, 10, 50, 50, 0.8, shift=3), d("a", 75, 40, 120, 115, 0.7, shift=4),
          d("b", 5, 105, 30, 30, 0.95), d("b", 40, 110, 30, 30, 0.6), d("b", 150, 5, 30, 30, 0.5), d("c", 60, 60, 20, 20, 0.4)]),
        ([], []),  # an empty image
        ([d("b", 10, 10, 40, 40), d("b", 100, 50, 60, 60)], []),  # ground truth only
        ([], [d("a", 10, 10, 40, 40, 0.9), d("b", 100, 50, 60, 60, 0.3)]),  # predictions only
        # 130 detections of one class (maxDets: the 100 best count, then 10 and 1 for AR), tied scores
        ([d("a", 10 + 30 * (i % 6), 10 + 30 * (i // 6), 20, 20) for i in range(24)],
         [d("a", 10 + 30 * (i % 6), 10 + 30 * ((i // 6) % 4), 20, 20, [0.5, 0.9, 0.7][i % 3], shift=i % 4)
          for i in range(130)]),
        # a crowd region alone, matched by several detections; a duplicate detection
        ([d("a", 20, 20, 120, 100, crowd=True), d("b", 150, 100, 40, 40)],
         [d("a", 30, 30, 40, 40, 0.8), d("a", 70, 60, 40, 40, 0.7), d("b", 150, 100, 40, 40, 0.9),
          d("b", 151, 101, 40, 40, 0.9)]),
        # box-local IoUs (encoding.block_ious): masks cut by the image's edges, boxes touching at
        # an edge or overlapping by one column, empty masks (on an empty GT, inside a crowd
        # region), a mask smaller than its box
        ([d("a", -8, -6, 30, 30), d("a", 185, 140, 30, 30), d("b", 50, 50, 30, 30), d("b", 80, 50, 30, 30),
          empty("a", 120, 20, 20, 20), d("b", 100, 100, 50, 40, crowd=True)],
         [d("a", -6, -5, 30, 30, 0.9), d("a", 183, 139, 30, 30, 0.8), d("b", 80, 50, 30, 30, 0.85),
          d("b", 79, 20, 30, 30, 0.3), empty("a", 120, 20, 20, 20, 0.5), empty("b", 110, 110, 10, 10, 0.4),
          d("b", 105, 105, 20, 20, 0.6), small("a", 0, 120, 30, 30, 0.7)]),
    ]
    dataset = fo.Dataset("eval-identity-crafted")
    dataset.default_classes = ["a", "b", "c"]
    dataset.add_samples([fo.Sample(filepath=f"/nonexistent/identity/{i}.png", metadata=fo.ImageMetadata(width=W, height=H),
                                   ground_truth=fo.Detections(detections=gts), predictions=fo.Detections(detections=preds))
                         for i, (gts, preds) in enumerate(scenes)])
    yield dataset
    dataset.delete()


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_crafted_edge_cases_give_pycocotools_numbers_and_store_them(crafted, iou_type):
    res = _check_identity(crafted, iou_type)
    outcome = dict(zip(res.pred.label_id.tolist(), res.pred.outcome.tolist()))
    assert sorted(set(outcome.values())) == ["fp", "ignored", "tp"]
    assert (res.pred.outcome[res.pred.img == 4] == "ignored").sum() >= 30  # beyond the 100 best
    assert res.summary["APs"] > -1 and res.summary["APm"] > -1 and res.summary["APl"] > -1
    assert res.summary["per_class"]["c"] == -1  # predicted, never annotated
    assert res.per_sample["fn"][2] == 2 and res.per_sample["fp"][3] == 2 and res.per_sample["tp"][1] == 0
    _check_stored(crafted, res, f"idt_{iou_type}")
