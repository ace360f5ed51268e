"""An evaluation run: COCOeval, then one row per GT and per prediction with its outcome.

Per-label outcomes come from COCOeval's own ``evalImgs`` (``dtMatches``/``gtMatches`` at the
chosen IoU threshold, area "all", 100 detections), so they are consistent with the mAP; an IoU
threshold that is not one of COCO's ten is matched with the same rule (``matching.py``).

Outcomes: ``tp``, ``fp``, ``fn``, or ``ignored`` for what COCOeval ignores: crowd GTs, the
detections matched to them, and detections beyond the 100 best of a class in an image. (FiftyOne's
own COCO evaluation counts crowd matches as TP and unmatched crowds as FN; we follow COCOeval
so that per-sample counts agree with the mAP.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from maskreview.core.errors import BadInputError
from maskreview.core.evaluation import coco
from maskreview.core.evaluation.matching import coco_greedy
from maskreview.core.progress import Progress

SMALL, LARGE = 32 ** 2, 96 ** 2  # COCO's area ranges


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


@dataclass
class PairBlock:
    """COCOeval's IoU matrix for one (image, class): rows by score, columns ignored-last."""

    preds: np.ndarray  # row -> prediction index
    gts: np.ndarray  # column -> GT index
    ious: np.ndarray
    gt_ignore: np.ndarray
    gt_crowd: np.ndarray


@dataclass
class EvalResults:
    iou_type: str
    gt_field: str
    pred_field: str
    iou_thresh: float
    sample_ids: list[str]
    heights: np.ndarray
    widths: np.ndarray
    classes: list[str]
    summary: dict
    gt: Objects
    pred: Objects
    precision: np.ndarray  # [T, K, R] area all, 100 dets (COCOeval's, -1 = no GT; FiftyOne's layout)
    pr_scores: np.ndarray  # [T, K, R] score at each recall point
    recall: np.ndarray  # [T, K] max recall
    iou_thrs: np.ndarray
    rec_thrs: np.ndarray
    gt_geoms: list = field(default_factory=list)  # RLE dicts (segm) or [x, y, w, h] boxes
    pred_geoms: list = field(default_factory=list)
    gt_masks: list = field(default_factory=list)  # (x0, y0, box mask) per GT (a box fills a mask-less one)
    pred_masks: list = field(default_factory=list)
    eval_key: str | None = None
    warnings: list[str] = field(default_factory=list)
    label_oids: tuple = ((), ())  # GT and prediction label ids as ObjectIds (guard the writes)
    sample_versions: list = field(default_factory=list)  # versions as read, filter conditions (guard the writes)
    evaluator: object = field(default=None, repr=False)  # the COCOeval that produced these results
    _blocks: list[PairBlock] | None = field(default=None, repr=False)

    @property
    def blocks(self) -> list[PairBlock]:
        """COCOeval's IoU matrix of every (image, class), for re-matching at other thresholds."""
        if self._blocks is None:
            self._blocks = pair_blocks(self.evaluator, self.gt.crowd)
        return self._blocks

    @property
    def per_sample(self) -> dict[str, np.ndarray]:
        """TP/FP/FN counts per sample (in ``sample_ids`` order), ignored objects left out."""
        n = len(self.sample_ids)
        out = {}
        for name, table in (("tp", self.pred), ("fp", self.pred), ("fn", self.gt)):
            out[name] = np.bincount(table.img[table.outcome == name], minlength=n)
        return out

    def class_index(self, name: str) -> int:
        return self.classes.index(name)


def _evalimgs_all(ev):
    """``(image id, category id, evalImg)`` of area "all" and 100 detections, non-empty ones."""
    p = ev.params
    n_img, n_area = len(p.imgIds), len(p.areaRng)
    for k, cat in enumerate(p.catIds):
        base = k * n_area * n_img
        for i, img_id in enumerate(p.imgIds):
            e = ev.evalImgs[base + i]
            if e is not None:
                yield img_id, cat, e


def pair_blocks(ev, gt_crowd: np.ndarray) -> list[PairBlock]:
    blocks = []
    for img_id, cat, e in _evalimgs_all(ev):
        dt_rows = np.asarray(e["dtIds"], np.int64) - 1
        gt_cols = np.asarray(e["gtIds"], np.int64) - 1
        raw = ev.ious[(img_id, cat)]
        if len(raw) and len(gt_cols):
            pos = {g["id"] - 1: j for j, g in enumerate(ev._gts[img_id, cat])}
            ious = np.asarray(raw)[:, [pos[g] for g in gt_cols]]
        else:
            ious = np.zeros((len(dt_rows), len(gt_cols)))
        blocks.append(PairBlock(dt_rows, gt_cols, ious, np.asarray(e["gtIgnore"], bool), gt_crowd[gt_cols]))
    return blocks


def _outcomes_from_evalimgs(ev, t: int, gt: Objects, pred: Objects) -> None:
    """Per-label outcomes from COCOeval's own matches at IoU threshold index ``t``."""
    d_ids, d_match, d_ignore, d_iou = [], [], [], []
    for img_id, cat, e in _evalimgs_all(ev):
        if not e["dtIds"]:
            continue
        dtm = e["dtMatches"][t]
        d_ids += e["dtIds"]
        d_match.append(dtm)
        d_ignore.append(e["dtIgnore"][t])
        if dtm.any():  # IoU of each match, from COCOeval's matrix (rows by score, GTs in COCO order)
            pos = {g["id"]: j for j, g in enumerate(ev._gts[img_id, cat])}
            cols = [pos.get(m, 0) for m in dtm.tolist()]
            d_iou.append(np.where(dtm > 0, ev.ious[(img_id, cat)][np.arange(len(cols)), cols], np.nan))
        else:
            d_iou.append(np.full(len(dtm), np.nan))
    if not d_ids:
        return
    d = np.asarray(d_ids, np.int64) - 1
    g = np.concatenate(d_match).astype(np.int64) - 1  # GT row, -1 = none
    ignored = np.concatenate(d_ignore).astype(bool)
    iou = np.concatenate(d_iou)
    hit = g >= 0
    pred.outcome[d] = np.where(hit, np.where(ignored, "ignored", "tp"), "fp")
    pred.match[d[hit]], pred.iou[d[hit]] = g[hit], iou[hit]
    real = hit & ~ignored
    gt.outcome[g[real]], gt.match[g[real]], gt.iou[g[real]] = "tp", d[real], iou[real]


def _outcomes_by_greedy(blocks: list[PairBlock], iou_thresh: float, gt: Objects, pred: Objects) -> None:
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


def compute(view, gt_field: str = "ground_truth", pred_field: str = "predictions", iou_type: str = "segm",
            iou_thresh: float = 0.5, boundary: bool = True, occlusion: bool = True,
            progress: Progress | None = None, while_evaluating: Callable[[], None] | None = None,
            before_accumulate: Callable[[EvalResults], None] | None = None) -> EvalResults:
    """Evaluate ``pred_field`` against ``gt_field`` over a view; nothing is written.

    ``while_evaluating()`` runs while COCOeval's per-image work is under way in the workers;
    ``before_accumulate(results)`` gets the per-label outcomes (all but the accumulated figures:
    summary, precision) and may start writing them while ``accumulate`` runs.
    """
    progress = progress or Progress()
    progress.start(4, "evaluating")
    if not 0 < iou_thresh <= 1:
        raise BadInputError(f"IoU threshold {iou_thresh} must be in (0, 1]")
    inputs = coco.coco_inputs(view, gt_field, pred_field, iou_type, encode=False)
    progress.advance()
    progress.check()
    # masks are encoded, occlusion and boundary IoU computed per shard, in workers and here
    from pycocotools.cocoeval import Params

    t_hits = np.flatnonzero(np.abs(Params(iou_type).iouThrs - iou_thresh) < 1e-9)
    boundary_at = int(t_hits[0]) if boundary and iou_type == "segm" and t_hits.size else None
    pending = coco.start_cocoeval(inputs.gt, inputs.results, iou_type, gt_masks=inputs.gt_masks,
                                  pred_masks=inputs.pred_masks, encode=iou_type == "segm", occlusion=occlusion,
                                  boundary_at=boundary_at)
    anns, dts = inputs.gt["annotations"], inputs.results
    gt, pred = Objects.empty(len(anns)), Objects.empty(len(dts))
    heights = np.array([im["height"] for im in inputs.gt["images"]])
    widths = np.array([im["width"] for im in inputs.gt["images"]])
    if while_evaluating is not None:
        while_evaluating()
    done = pending.evaluated()
    ev = done.evaluator
    progress.advance()
    progress.check()
    if done.occlusion is not None:
        gt.occlusion[:] = done.occlusion
    gt.img[:] = [a["image_id"] - 1 for a in anns]
    gt.label_id[:] = inputs.gt_label_ids
    gt.cls[:] = [a["category_id"] - 1 for a in anns]
    gt.area[:] = [a["area"] for a in anns]
    gt.crowd[:] = [bool(a["iscrowd"]) for a in anns]
    gt.outcome[:] = np.where(gt.crowd, "ignored", "fn")
    pred.label_id[:] = inputs.pred_label_ids
    pred.img[:] = [d["image_id"] - 1 for d in dts]
    pred.cls[:] = [d["category_id"] - 1 for d in dts]
    pred.area[:] = done.areas
    pred.score[:] = [d["score"] for d in dts]
    key = "segmentation" if iou_type == "segm" else "bbox"
    n_thr, n_cls, n_rec = len(ev.params.iouThrs), len(ev.params.catIds), len(ev.params.recThrs)
    results = EvalResults(
        iou_type, gt_field, pred_field, iou_thresh, inputs.sample_ids, heights, widths,
        [c["name"] for c in inputs.gt["categories"]], {}, gt, pred, -np.ones((n_thr, n_cls, n_rec)),
        -np.ones((n_thr, n_cls, n_rec)), -np.ones((n_thr, n_cls)), np.asarray(ev.params.iouThrs),
        np.asarray(ev.params.recThrs), [a[key] for a in anns], [d[key] for d in dts], inputs.gt_masks,
        inputs.pred_masks, warnings=list(inputs.warnings), label_oids=inputs.label_oids,
        sample_versions=inputs.sample_versions, evaluator=ev)
    if t_hits.size:  # COCOeval's own matches
        _outcomes_from_evalimgs(ev, int(t_hits[0]), gt, pred)
    else:
        _outcomes_by_greedy(results.blocks, iou_thresh, gt, pred)
    progress.advance()
    if done.boundary is not None:
        set_boundary_ious(results, *done.boundary)
    elif boundary and iou_type == "segm":
        compute_boundary_iou(results)
    if before_accumulate is not None:
        before_accumulate(results)
    coco.accumulate(ev)
    results.summary = coco.summary(ev)
    results.precision = np.transpose(ev.eval["precision"][:, :, :, 0, -1], (0, 2, 1))
    results.pr_scores = np.transpose(ev.eval["scores"][:, :, :, 0, -1], (0, 2, 1))
    results.recall = ev.eval["recall"][:, :, 0, -1]
    progress.advance()
    progress.finish()
    return results


def gt_occlusion(gt_img: np.ndarray, heights: np.ndarray, widths: np.ndarray, gt_masks: list,
                 gt_boxes: list) -> np.ndarray:
    """For each GT: the largest fraction of it covered by another GT instance's box.

    ``gt_img``: each GT's image index; ``gt_masks``: ``(x0, y0, box mask)`` per GT; ``gt_boxes``:
    each GT's COCO ``bbox`` (for masks, the tight box of its pixels in the image). Counted
    exactly with one integral image per instance mask and four look-ups per pair of instances in
    an image, all pairs at once.
    """
    import cv2

    n = len(gt_img)
    if n == 0:
        return np.zeros(0)
    h, w = heights[gt_img], widths[gt_img]
    # each instance's visible mask (clipped to its image) and its integral image, in one buffer
    integrals, offsets, geo = [], [0], []
    for (x, y, m), hh, ww in zip(gt_masks, h.tolist(), w.tolist()):
        xs, ys = max(x, 0), max(y, 0)
        m = m[ys - y:max(min(y + m.shape[0], hh) - y, ys - y), xs - x:max(min(x + m.shape[1], ww) - x, xs - x)]
        s = cv2.integral(m.view(np.uint8)) if m.size else np.zeros((m.shape[0] + 1, m.shape[1] + 1), np.int32)
        integrals.append(s.ravel())
        offsets.append(offsets[-1] + s.size)
        geo.append((xs, ys, m.shape[1], m.shape[0]))
    table = np.concatenate(integrals)
    start = np.asarray(offsets[:-1], np.int64)
    ax, ay, aw, ah = np.asarray(geo, np.int64).reshape(n, 4).T
    area = table[start + ah * (aw + 1) + aw].astype(float)
    box = np.floor(np.asarray(gt_boxes, float).reshape(n, 4) + 0.5).astype(np.int64)
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
    a, b = a[a != b], b[a != b]

    def at(px, py):  # integral of instance a at image pixel corner (px, py), clamped to its box
        lx, ly = np.clip(px - ax[a], 0, aw[a]), np.clip(py - ay[a], 0, ah[a])
        return table[start[a] + ly * (aw[a] + 1) + lx].astype(np.int64)

    inside = at(bx1[b], by1[b]) - at(bx0[b], by1[b]) - at(bx1[b], by0[b]) + at(bx0[b], by0[b])
    cover = np.divide(inside, area[a], out=np.zeros(len(a)), where=area[a] > 0)
    occlusion = np.zeros(n)
    np.maximum.at(occlusion, a, cover)
    return occlusion


def compute_boundary_iou(results: EvalResults) -> None:
    """Boundary IoU of every matched (TP or crowd-ignored) prediction and its GT (segm only)."""
    from maskreview.core.evaluation.boundary import boundary_ious

    if results.iou_type != "segm":
        return
    preds = np.flatnonzero(results.pred.match >= 0)
    gts = results.pred.match[preds]
    img = results.pred.img[preds]
    biou = boundary_ious([(results.gt_masks[g], results.pred_masks[d]) for g, d in zip(gts, preds)],
                         results.heights[img], results.widths[img])
    set_boundary_ious(results, preds, biou)


def set_boundary_ious(results: EvalResults, preds: np.ndarray, biou: np.ndarray) -> None:
    """Store the boundary IoU of matched predictions ``preds``, and on their GTs."""
    results.pred.biou[preds] = biou
    gts = results.pred.match[preds]
    own = results.gt.match[gts] == preds  # the GT's own match (a crowd GT may take several)
    results.gt.biou[gts[own]] = biou[own]
