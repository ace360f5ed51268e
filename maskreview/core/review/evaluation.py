"""The evaluation as the reviewer sees it: at the review state's thresholds (Qt-free).

COCOeval's mAP is computed over every score; the TP/FP/FN counts, the sort orders, the confusion
matrix and the failure groups are those at the ONE confidence and IoU threshold the canvas shows
(:func:`at_thresholds`), so a drill-down shows exactly the labels it counts.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from maskreview.core.evaluation import analysis
from maskreview.core.evaluation.results import compute
from maskreview.core.review import stored

SORTS = (("fp", "most false positives"), ("fn", "most false negatives"), ("f1", "worst F1 first"),
         ("iou", "lowest mean IoU first"))


def at_thresholds(results, rematch):
    """``results`` with each label's outcome, match and IoU as re-matched by ``rematch``
    (predictions under the confidence threshold count as ignored: they are not on screen)."""
    if rematch is None or rematch.pred_match is None:
        return results
    pred_out = np.where(rematch.pred_outcome == "below", "ignored", rematch.pred_outcome).astype(object)
    gt_match = np.full(len(results.gt), -1, np.int64)
    gt_iou = np.full(len(results.gt), np.nan)
    tp = np.flatnonzero(rematch.pred_outcome == "tp")
    gt_match[rematch.pred_match[tp]] = tp
    gt_iou[rematch.pred_match[tp]] = rematch.pred_iou[tp]
    same = (results.pred.match == rematch.pred_match)
    pred = replace(results.pred, outcome=pred_out, match=rematch.pred_match, iou=rematch.pred_iou,
                   biou=np.where(same, results.pred.biou, np.nan))
    gt_same = results.gt.match == gt_match
    gt = replace(results.gt, outcome=rematch.gt_outcome.astype(object), match=gt_match, iou=gt_iou,
                 biou=np.where(gt_same, results.gt.biou, np.nan))
    out = replace(results, gt=gt, pred=pred)
    out._blocks = results._blocks  # the IoU matrices do not depend on the thresholds
    return out


def sample_order(results, by: str = "fp") -> list[str]:
    """Sample ids: most FP or FN first, worst F1 first, or lowest mean IoU of the matches first
    (samples with nothing to match last). Ties keep the dataset's order."""

    if by != "iou":
        return analysis.sample_order(results, by)
    n = len(results.sample_ids)
    pred = results.pred
    tp = pred.outcome == "tp"
    sums = np.bincount(pred.img[tp], weights=pred.iou[tp], minlength=n)
    counts = np.bincount(pred.img[tp], minlength=n)
    fn = results.per_sample["fn"]
    # a sample whose ground truth is all missed has mean IoU 0; one with no ground truth sorts last
    mean = np.divide(sums, counts, out=np.where(fn > 0, 0.0, np.inf), where=counts > 0)
    return [results.sample_ids[i] for i in np.argsort(mean, kind="stable")]


def stored_evaluation(dataset) -> tuple[str, object] | None:
    """The newest evaluation stored in ``dataset`` that maskreview can show: ``(eval key, its
    config)`` (a COCO evaluation of two ``Detections`` fields the dataset still has)."""
    if dataset is None or not hasattr(dataset, "list_evaluations"):
        return None
    schema = dataset.get_field_schema()
    for key in reversed(dataset.list_evaluations()):
        config = dataset.get_evaluation_info(key).config
        if getattr(config, "method", None) == "coco" and config.gt_field in schema and config.pred_field in schema:
            return key, config
    return None


def load_stored(dataset, key: str, config, progress=None):
    """The stored run under ``key`` as of the labels now (the stored per-label values are never
    shown: they go stale with every edit); returns EvalResults. What this computed last time is
    loaded while no sample changed since (:mod:`stored`, #17.4); else it is computed again, and kept."""
    results = stored.load(dataset, key, config)
    if results is not None:
        return results
    iou_type = "segm" if getattr(config, "use_masks", False) else "bbox"
    results = compute(dataset.view(), config.gt_field, config.pred_field, iou_type,
                      float(getattr(config, "iou", 0.5) or 0.5), progress=progress)
    results.eval_key = key
    stored.keep(dataset, results)
    return results
