"""A TIDE-style error breakdown (Bolya et al., ECCV 2020), written from the paper's definitions.

At the foreground threshold ``t_f`` (0.5) predictions are matched as COCOeval does. Each false
positive gets one error type, tested in this order, with IoU_same / IoU_other its largest IoU
with a GT of the same / another class (crowds left out):

- background: IoU with every GT < ``t_b`` (0.1);
- localization: ``t_b <= IoU_same < t_f``;
- classification: ``IoU_other >= t_f``;
- duplicate: ``IoU_same >= t_f`` (that GT was already taken by a higher-scored prediction);
- both (class and location wrong): ``t_b <= IoU_other < t_f``.

A missed GT is a false negative that no classification or localization error points at.
The AP a type costs is AP50 after fixing only that type minus AP50 as it is: a classification
or localization error becomes the true positive of its GT when that GT is still unmatched and
is removed otherwise; duplicate, both and background errors are removed; missed GTs are removed
from the ground truth. AP50 follows COCOeval exactly (101 recall points, mean over classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskreview.core.evaluation.analysis import rematch_dataset
from maskreview.core.evaluation.results import EvalResults
from maskreview.core.masks import geometry_ious

ERROR_TYPES = ("classification", "localization", "both", "duplicate", "background", "missed")


def coco_ap(scores: np.ndarray, is_tp: np.ndarray, order_key: np.ndarray, num_gt: int,
            rec_thrs: np.ndarray) -> float:
    """COCOeval's AP of one class from its detections (``order_key`` reproduces its tie order)."""
    if num_gt == 0:
        return -1.0
    if len(scores) == 0:
        return 0.0
    inds = np.lexsort((order_key, -scores))
    tp = np.cumsum(is_tp[inds]).astype(float)
    fp = np.cumsum(~is_tp[inds]).astype(float)
    rc = tp / num_gt
    pr = tp / (fp + tp + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1]
    idx = np.searchsorted(rc, rec_thrs, side="left")
    q = np.where(idx < len(pr), pr[np.minimum(idx, len(pr) - 1)], 0.0)
    return float(q.mean())


def mean_ap(cls: np.ndarray, scores: np.ndarray, is_tp: np.ndarray, order_key: np.ndarray,
            num_gt: np.ndarray, rec_thrs: np.ndarray) -> float:
    aps = [coco_ap(scores[cls == k], is_tp[cls == k], order_key[cls == k], int(num_gt[k]), rec_thrs)
           for k in range(len(num_gt))]
    aps = [a for a in aps if a > -1]
    return float(np.mean(aps)) if aps else -1.0


@dataclass
class TideReport:
    counts: dict[str, int]
    delta_ap: dict[str, float]  # AP50 gained by fixing that type (0..1)
    ap50: float
    pred_error: np.ndarray  # per prediction: an error type or ""
    gt_missed: np.ndarray  # per GT: True when missed
    results: EvalResults

    def ids(self, error: str) -> tuple[list[str], list[str]]:
        """``(sample ids, label ids)`` of one error type, to open as a filtered view."""
        r = self.results
        if error == "missed":
            rows = np.flatnonzero(self.gt_missed)
            imgs, labels = r.gt.img[rows], r.gt.label_id[rows]
        else:
            rows = np.flatnonzero(self.pred_error == error)
            imgs, labels = r.pred.img[rows], r.pred.label_id[rows]
        return [r.sample_ids[i] for i in sorted(set(imgs.tolist()))], labels.tolist()


def tide(results: EvalResults, t_f: float = 0.5, t_b: float = 0.1) -> TideReport:
    gt, pred = results.gt, results.pred
    base = rematch_dataset(results, 0.0, t_f)
    live = base.pred_outcome != "ignored"
    is_tp = base.pred_outcome == "tp"
    # COCOeval orders a class's detections by score, ties by image then by score order in the image
    order_key = np.empty(len(pred), np.int64)
    order_key[np.lexsort((-pred.score, pred.img))] = np.arange(len(pred))
    n_cls = len(results.classes)
    real_gt = ~gt.crowd
    num_gt = np.bincount(gt.cls[real_gt], minlength=n_cls)

    error = np.full(len(pred), "", dtype=object)
    target = np.full(len(pred), -1, np.int64)
    fp_rows = np.flatnonzero(base.pred_outcome == "fp")
    for i in np.unique(pred.img[fp_rows]):
        ps = fp_rows[pred.img[fp_rows] == i]
        gs = np.flatnonzero((gt.img == i) & real_gt)
        if len(gs) == 0:
            error[ps] = "background"
            continue
        ious = geometry_ious([results.pred_geoms[p] for p in ps], [results.gt_geoms[g] for g in gs], [0] * len(gs))
        same = pred.cls[ps][:, None] == gt.cls[gs][None, :]
        iou_same = np.where(same, ious, -1.0)
        iou_other = np.where(~same, ious, -1.0)
        for a, p in enumerate(ps):
            s_best, o_best = iou_same[a].max(), iou_other[a].max()
            if ious[a].max() < t_b:
                error[p] = "background"
            elif t_b <= s_best < t_f:
                error[p], target[p] = "localization", gs[int(np.argmax(iou_same[a]))]
            elif o_best >= t_f:
                error[p], target[p] = "classification", gs[int(np.argmax(iou_other[a]))]
            elif s_best >= t_f:
                error[p] = "duplicate"
            else:
                error[p] = "both"
    fn = base.gt_outcome == "fn"
    pointed = set(target[(error == "classification") | (error == "localization")].tolist())
    missed = fn & ~np.isin(np.arange(len(gt)), list(pointed))

    ap = mean_ap(pred.cls[live], pred.score[live], is_tp[live], order_key[live], num_gt, results.rec_thrs)
    delta = {}
    for err in ERROR_TYPES:
        cls, ok, keep = pred.cls.copy(), is_tp.copy(), live.copy()
        ngt = num_gt.copy()
        if err == "missed":
            ngt -= np.bincount(gt.cls[missed], minlength=n_cls)
        elif err in ("classification", "localization"):
            claimed = set()
            rows = np.flatnonzero(error == err)
            for p in rows[np.argsort(-pred.score[rows], kind="mergesort")]:
                g = int(target[p])
                if fn[g] and g not in claimed:
                    claimed.add(g)
                    cls[p], ok[p] = gt.cls[g], True
                else:
                    keep[p] = False
        else:
            keep &= error != err
        delta[err] = mean_ap(cls[keep], pred.score[keep], ok[keep], order_key[keep], ngt, results.rec_thrs) - ap
    counts = {e: int(np.sum(error == e)) for e in ERROR_TYPES if e != "missed"}
    counts["missed"] = int(missed.sum())
    return TideReport(counts, delta, ap, error, missed, results)
