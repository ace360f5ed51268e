"""Per-label outcomes of an evaluation: one row per GT and per prediction.

Outcomes: ``tp``, ``fp``, ``fn``, or ``ignored`` for what COCOeval ignores: crowd GTs, the
detections matched to them, and detections beyond the 100 best of a class in an image. At one
of COCO's ten IoU thresholds they are COCOeval's own matches (``engine.Matches``); at another
threshold, COCOeval's rule applied to its IoU matrices (``matching.coco_greedy``). Also each
GT's occlusion and the boundary IoU of the matched pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskreview.core.evaluation.engine import Evaluation, PairBlock
from maskreview.core.evaluation.matching import coco_greedy
from maskreview.core.masks import round_half_up, visible


# each outcome one shared str: ``np.where`` over str values gives a str array, and putting it
# into an object array makes a new str per label (1,000,000 of them at 100,000 samples, ~50 MB)
OUTCOMES = np.array(["tp", "fp", "fn", "ignored"], dtype=object)
TP, FP, FN, IGNORED = range(4)


@dataclass
class Objects:
    """One row per GT or per prediction (parallel numpy arrays)."""

    label_id: np.ndarray  # str
    img: np.ndarray  # index into EvalResults.sample_ids
    cls: np.ndarray  # index into EvalResults.classes
    area: np.ndarray
    score: np.ndarray  # predictions' confidence (nan for GT)
    crowd: np.ndarray  # bool (GT only)
    outcome: np.ndarray  # "tp" | "fp" | "fn" | "ignored"
    match: np.ndarray  # row index in the other table, -1 = none
    iou: np.ndarray  # IoU with the match, nan = none
    biou: np.ndarray  # boundary IoU with the match (segm, when computed), nan = none
    occlusion: np.ndarray  # GT: largest fraction covered by another GT's box (nan for predictions)

    def __len__(self) -> int:
        return len(self.label_id)

    @classmethod
    def empty(cls, n: int) -> Objects:
        return cls(np.empty(n, dtype=object), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n),
                   np.full(n, np.nan), np.zeros(n, bool), np.full(n, "ignored", dtype=object),
                   np.full(n, -1, np.int64), np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan))


def outcomes_from_matches(evaluation: Evaluation, t: int, gt: Objects, pred: Objects) -> None:
    """Per-label outcomes from COCOeval's own matches at IoU threshold index ``t``."""
    m = evaluation.matches
    if not len(m.preds):
        return
    g, ignored = m.at(t)  # GT row per prediction row (-1 = none)
    d = m.preds
    hit = g >= 0
    iou = np.full(len(d), np.nan)
    iou[hit] = evaluation.match_ious(np.flatnonzero(hit), g[hit])
    pred.outcome[d] = OUTCOMES[np.where(hit, np.where(ignored, IGNORED, TP), FP)]
    pred.match[d[hit]], pred.iou[d[hit]] = g[hit], iou[hit]
    real = hit & ~ignored
    gt.outcome[g[real]], gt.match[g[real]], gt.iou[g[real]] = "tp", d[real], iou[real]


def outcomes_by_greedy(blocks: list[PairBlock], iou_thresh: float, gt: Objects, pred: Objects) -> None:
    """Per-label outcomes at an IoU threshold that is not one of COCOeval's (same rule)."""
    for b in blocks:
        dm, _, dt_ig = coco_greedy(b.ious, b.gt_ignore, b.gt_crowd, iou_thresh)
        for r, d in enumerate(b.preds):
            if dm[r] < 0:
                pred.outcome[d] = "fp"
                continue
            g = b.gts[dm[r]]
            pred.outcome[d] = "ignored" if dt_ig[r] else "tp"
            pred.match[d], pred.iou[d] = g, b.ious[r, dm[r]]
            if not b.gt_ignore[dm[r]]:
                gt.outcome[g], gt.match[g], gt.iou[g] = "tp", d, b.ious[r, dm[r]]


def gt_occlusion(gt_img: np.ndarray, heights: np.ndarray, widths: np.ndarray, gt_masks: list,
                 gt_boxes: list) -> np.ndarray:
    """For each GT: the largest fraction of it covered by another GT instance's box.

    ``gt_img``: each GT's image index; ``gt_masks``: ``(x0, y0, box mask)`` per GT; ``gt_boxes``:
    each GT's COCO ``bbox`` (for masks, the tight box of its pixels in the image). Counted
    exactly, only for the pairs of instances of an image whose box meets the other's visible
    part: the pixels of one inside the other's box (a count over a slice of its mask).
    """
    n = len(gt_img)
    if n == 0:
        return np.zeros(0)
    h, w = heights[gt_img], widths[gt_img]
    # each instance's visible part (clipped to its image): where it starts and its size
    x0, y0, mh, mw = np.array([(x, y, *m.shape[:2]) for x, y, m in gt_masks], np.int64).reshape(n, 4).T
    ax, ay = np.maximum(x0, 0), np.maximum(y0, 0)
    aw = np.maximum(np.minimum(x0 + mw, w) - x0, ax - x0) - (ax - x0)
    ah = np.maximum(np.minimum(y0 + mh, h) - y0, ay - y0) - (ay - y0)
    box = round_half_up(np.asarray(gt_boxes, float).reshape(n, 4))
    bx0, by0 = np.clip(box[:, 0], 0, w), np.clip(box[:, 1], 0, h)
    bx1, by1 = np.clip(box[:, 0] + box[:, 2], 0, w), np.clip(box[:, 1] + box[:, 3], 0, h)
    # every ordered pair (a, b) of different instances of one image
    order = np.argsort(gt_img, kind="stable")
    per_img = np.bincount(gt_img, minlength=len(heights))
    group = per_img[gt_img[order]]
    first = np.concatenate(([0], np.cumsum(per_img)))[gt_img[order]]
    a_s = np.repeat(np.arange(n), group)
    b_s = first[a_s] + np.arange(len(a_s)) - np.repeat(np.cumsum(group) - group, group)
    a, b = order[a_s], order[b_s]
    # only pairs where b's box meets a's visible part can cover any of a (the rest cover 0)
    meets = (a != b) & (np.maximum(ax[a], bx0[b]) < np.minimum(ax[a] + aw[a], bx1[b])) \
        & (np.maximum(ay[a], by0[b]) < np.minimum(ay[a] + ah[a], by1[b]))
    a, b = a[meets], b[meets]
    occlusion = np.zeros(n)
    if not len(a):
        return occlusion
    # b's box within a's visible part, in that part's coordinates; a's pixels there and in all
    # (a count over a slice per pair: an integral image per instance cost twice as much, mostly
    # allocating them, ~40 MB at the bench's 1,000 images)
    c0, c1 = np.clip(bx0[b] - ax[a], 0, aw[a]).tolist(), np.clip(bx1[b] - ax[a], 0, aw[a]).tolist()
    r0, r1 = np.clip(by0[b] - ay[a], 0, ah[a]).tolist(), np.clip(by1[b] - ay[a], 0, ah[a]).tolist()
    parts = {i: visible(*gt_masks[i], int(h[i]), int(w[i]))[2] for i in np.unique(a).tolist()}
    pixels = {i: np.count_nonzero(m) for i, m in parts.items()}
    area = np.array([pixels[i] for i in a.tolist()], float)
    inside = np.array([np.count_nonzero(parts[i][r0[k]:r1[k], c0[k]:c1[k]]) for k, i in enumerate(a.tolist())], float)
    cover = np.divide(inside, area, out=np.zeros(len(a)), where=area > 0)
    np.maximum.at(occlusion, a, cover)
    return occlusion
