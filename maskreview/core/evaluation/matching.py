"""COCO's greedy matching, outside COCOeval: for any IoU threshold, for one sample live, and
for the whole dataset again when the confidence or IoU threshold moves.

The rule is COCOeval's ``evaluateImg``, per class: detections in descending score (stable),
each takes the unmatched GT with the highest IoU >= the threshold (a later GT wins a tie);
crowd GTs may take several detections; ignored GTs (crowds) come last and a detection stops
looking at them once it holds a real GT. A detection that lands on an ignored GT is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskreview.core.evaluation.encoding import detection_rle
from maskreview.core.masks import geometry_ious


def coco_greedy(ious: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray, iou_thresh: float):
    """Match rows (detections, best score first) to columns (GTs, ignored ones last).

    Returns ``(dt_match, gt_match, dt_ignore)``: column index per row and row index per column
    (-1 = none), and whether each row is ignored.
    """
    n_dt, n_gt = ious.shape[0], len(gt_ignore)
    dt_match = np.full(n_dt, -1, dtype=np.int64)
    gt_match = np.full(n_gt, -1, dtype=np.int64)
    dt_ignore = np.zeros(n_dt, dtype=bool)
    if n_dt == 0 or n_gt == 0:
        return dt_match, gt_match, dt_ignore
    thr = min(iou_thresh, 1 - 1e-10)
    for d in range(n_dt):
        best, m = thr, -1
        row = ious[d]
        for g in range(n_gt):
            if gt_match[g] >= 0 and not gt_crowd[g]:
                continue
            if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                break
            if row[g] < best:
                continue
            best, m = row[g], g
        if m >= 0:
            dt_match[d] = m
            gt_match[m] = d
            dt_ignore[d] = gt_ignore[m]
    return dt_match, gt_match, dt_ignore


@dataclass
class Match:
    """TP/FP/FN per label of one sample (``"tp" | "fp" | "fn" | "ignored" | "below"``)."""

    gt_outcome: list[str]
    pred_outcome: list[str]
    gt_match: np.ndarray  # index into preds, -1 = none
    pred_match: np.ndarray  # index into gts, -1 = none
    pred_iou: np.ndarray  # IoU with the matched GT, nan = none

    @property
    def counts(self) -> dict[str, int]:
        out = {"tp": 0, "fp": 0, "fn": 0}
        for o in self.pred_outcome:
            if o in ("tp", "fp"):
                out[o] += 1
        out["fn"] = sum(o == "fn" for o in self.gt_outcome)
        return out


def match_arrays(ious: np.ndarray, gt_labels, gt_crowd, pred_labels, scores,
                 conf_thresh: float = 0.0, iou_thresh: float = 0.5, max_dets: int = 100) -> Match:
    """Per-class COCO matching on a precomputed ``[preds, gts]`` IoU matrix of one image.

    Predictions under ``conf_thresh`` are "below" (neither TP nor FP); beyond ``max_dets`` per
    class they are "ignored", as in COCOeval.
    """
    gt_labels, pred_labels = np.asarray(gt_labels, dtype=object), np.asarray(pred_labels, dtype=object)
    gt_crowd = np.asarray(gt_crowd, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    n_gt, n_pred = len(gt_labels), len(pred_labels)
    gt_out = np.where(gt_crowd, "ignored", "fn").astype(object)
    pred_out = np.full(n_pred, "below", dtype=object)
    gt_match = np.full(n_gt, -1, dtype=np.int64)
    pred_match = np.full(n_pred, -1, dtype=np.int64)
    pred_iou = np.full(n_pred, np.nan)
    for label in set(gt_labels.tolist()) | set(pred_labels.tolist()):
        g_idx = np.flatnonzero(gt_labels == label)
        g_idx = g_idx[np.argsort(gt_crowd[g_idx], kind="mergesort")]
        p_all = np.flatnonzero(pred_labels == label)
        p_all = p_all[np.argsort(-scores[p_all], kind="mergesort")]
        pred_out[p_all[max_dets:]] = "ignored"
        p_idx = p_all[:max_dets]
        p_idx = p_idx[scores[p_idx] >= conf_thresh]
        if not len(p_idx):
            continue
        sub = ious[np.ix_(p_idx, g_idx)] if len(g_idx) else np.zeros((len(p_idx), 0))
        dm, gm, dig = coco_greedy(sub, gt_crowd[g_idx], gt_crowd[g_idx], iou_thresh)
        for r, p in enumerate(p_idx):
            if dm[r] < 0:
                pred_out[p] = "fp"
                continue
            g = g_idx[dm[r]]
            pred_out[p] = "ignored" if dig[r] else "tp"
            pred_match[p], pred_iou[p] = g, sub[r, dm[r]]
            if not gt_crowd[g]:
                gt_out[g], gt_match[g] = "tp", p
    return Match(list(gt_out), list(pred_out), gt_match, pred_match, pred_iou)


class SampleMatcher:
    """Live re-matching of one sample: geometry and IoUs computed once, thresholds moved freely.

    ``match(conf, iou)`` takes microseconds to milliseconds, so a slider can call it directly.
    """

    def __init__(self, gt_dets, pred_dets, height: int, width: int, iou_type: str = "segm"):
        gts = list(gt_dets.detections) if gt_dets is not None else []
        preds = list(pred_dets.detections) if pred_dets is not None else []
        self.gt_ids = [d.id for d in gts]
        self.pred_ids = [d.id for d in preds]
        self.gt_labels = [d.label for d in gts]
        self.pred_labels = [d.label for d in preds]
        self.gt_crowd = [bool(d["iscrowd"]) if d.has_field("iscrowd") and d["iscrowd"] else False for d in gts]
        self.scores = [float(d.confidence) if d.confidence is not None else 1.0 for d in preds]
        if iou_type == "segm":
            geo = lambda d: detection_rle(d, height, width)  # noqa: E731
        else:
            geo = lambda d: [v * s for v, s in zip(d.bounding_box, (width, height, width, height))]  # noqa: E731
        self.ious = geometry_ious([geo(d) for d in preds], [geo(d) for d in gts], self.gt_crowd)

    def match(self, conf_thresh: float = 0.0, iou_thresh: float = 0.5) -> Match:
        return match_arrays(self.ious, self.gt_labels, self.gt_crowd, self.pred_labels, self.scores,
                            conf_thresh, iou_thresh)

    def outcomes_by_id(self, conf_thresh: float = 0.0, iou_thresh: float = 0.5) -> dict[str, str]:
        m = self.match(conf_thresh, iou_thresh)
        return {**dict(zip(self.gt_ids, m.gt_outcome)), **dict(zip(self.pred_ids, m.pred_outcome))}


def rematch_sample(gt_dets, pred_dets, height: int, width: int, conf_thresh: float = 0.0,
                   iou_thresh: float = 0.5, iou_type: str = "segm") -> Match:
    """TP/FP/FN per label of one sample at the given thresholds (see :class:`SampleMatcher`)."""
    return SampleMatcher(gt_dets, pred_dets, height, width, iou_type).match(conf_thresh, iou_thresh)
