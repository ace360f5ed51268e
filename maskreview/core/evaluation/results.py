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
    blocks: list[PairBlock] = field(default_factory=list)
    gt_geoms: list = field(default_factory=list)  # RLE dicts (segm) or [x, y, w, h] boxes
    pred_geoms: list = field(default_factory=list)
    gt_masks: list = field(default_factory=list)  # segm: (x0, y0, box mask) per GT
    pred_masks: list = field(default_factory=list)
    eval_key: str | None = None
    warnings: list[str] = field(default_factory=list)

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


def _outcomes_from_evalimgs(ev, t: int | None, iou_thresh: float, gt: Objects, pred: Objects, blocks: list):
    p = ev.params
    n_img, n_area = len(p.imgIds), len(p.areaRng)
    for k, cat in enumerate(p.catIds):
        for i, img_id in enumerate(p.imgIds):
            e = ev.evalImgs[k * n_area * n_img + i]
            if e is None:
                continue
            dt_rows = np.asarray(e["dtIds"], np.int64) - 1
            gt_cols = np.asarray(e["gtIds"], np.int64) - 1
            raw = ev.ious[(img_id, cat)]
            coco_order = [g["id"] - 1 for g in ev._gts[img_id, cat]]
            if len(raw) and len(gt_cols):
                pos = {g: j for j, g in enumerate(coco_order)}
                ious = np.asarray(raw)[:, [pos[g] for g in gt_cols]]
            else:
                ious = np.zeros((len(dt_rows), len(gt_cols)))
            gt_ignore = np.asarray(e["gtIgnore"], bool)
            crowd = gt.crowd[gt_cols]
            blocks.append(PairBlock(dt_rows, gt_cols, ious, gt_ignore, crowd))
            if t is not None:  # COCOeval's own matches
                dtm = np.asarray(e["dtMatches"][t], np.int64) - 1  # GT index, -1 = none
                dt_ig = np.asarray(e["dtIgnore"][t], bool)
                col = {g: j for j, g in enumerate(gt_cols)}
                dm = np.array([col[g] if g >= 0 else -1 for g in dtm], np.int64)
            else:
                dm, _, dt_ig = coco_greedy(ious, gt_ignore, crowd, iou_thresh)
            gt.outcome[gt_cols] = np.where(gt_ignore, "ignored", "fn")
            for r, d in enumerate(dt_rows):
                if dm[r] < 0:
                    pred.outcome[d] = "fp"
                    continue
                g = gt_cols[dm[r]]
                pred.outcome[d] = "ignored" if dt_ig[r] else "tp"
                pred.match[d], pred.iou[d] = g, ious[r, dm[r]]
                if not gt_ignore[dm[r]]:
                    gt.outcome[g], gt.match[g], gt.iou[g] = "tp", d, ious[r, dm[r]]


def compute(view, gt_field: str = "ground_truth", pred_field: str = "predictions", iou_type: str = "segm",
            iou_thresh: float = 0.5, boundary: bool = True, occlusion: bool = True,
            progress: Progress | None = None) -> EvalResults:
    """Evaluate ``pred_field`` against ``gt_field`` over a view; nothing is written."""
    progress = progress or Progress()
    progress.start(4, "evaluating")
    if not 0 < iou_thresh <= 1:
        raise BadInputError(f"IoU threshold {iou_thresh} must be in (0, 1]")
    inputs = coco.coco_inputs(view, gt_field, pred_field, iou_type)
    progress.advance()
    progress.check()
    ev = coco.run_cocoeval(inputs.gt, inputs.results, iou_type)
    progress.advance()
    progress.check()
    anns, dts = inputs.gt["annotations"], inputs.results
    gt, pred = Objects.empty(len(anns)), Objects.empty(len(dts))
    gt.label_id[:] = inputs.gt_label_ids
    gt.img[:] = [a["image_id"] - 1 for a in anns]
    gt.cls[:] = [a["category_id"] - 1 for a in anns]
    gt.area[:] = [a["area"] for a in anns]
    gt.crowd[:] = [bool(a["iscrowd"]) for a in anns]
    gt.outcome[:] = np.where(gt.crowd, "ignored", "fn")
    pred.label_id[:] = inputs.pred_label_ids
    pred.img[:] = [d["image_id"] - 1 for d in dts]
    pred.cls[:] = [d["category_id"] - 1 for d in dts]
    pred.area[:] = [d["area"] for d in dts]  # loadRes filled it
    pred.score[:] = [d["score"] for d in dts]
    t_hits = np.flatnonzero(np.abs(ev.params.iouThrs - iou_thresh) < 1e-9)
    blocks: list[PairBlock] = []
    _outcomes_from_evalimgs(ev, int(t_hits[0]) if t_hits.size else None, iou_thresh, gt, pred, blocks)
    key = "segmentation" if iou_type == "segm" else "bbox"
    gt_geoms = [a[key] for a in anns]
    pred_geoms = [d[key] for d in dts]
    results = EvalResults(
        iou_type, gt_field, pred_field, iou_thresh, inputs.sample_ids,
        np.array([im["height"] for im in inputs.gt["images"]]), np.array([im["width"] for im in inputs.gt["images"]]),
        [c["name"] for c in inputs.gt["categories"]], coco.summary(ev), gt, pred,
        np.transpose(ev.eval["precision"][:, :, :, 0, -1], (0, 2, 1)),
        np.transpose(ev.eval["scores"][:, :, :, 0, -1], (0, 2, 1)),
        ev.eval["recall"][:, :, 0, -1], np.asarray(ev.params.iouThrs), np.asarray(ev.params.recThrs),
        blocks, gt_geoms, pred_geoms, inputs.gt_masks, inputs.pred_masks, warnings=list(inputs.warnings))
    progress.advance()
    if occlusion:
        compute_occlusion(results)
    if boundary and iou_type == "segm":
        compute_boundary_iou(results)
    progress.advance()
    progress.finish()
    return results


def compute_occlusion(results: EvalResults) -> None:
    """For each GT: the largest fraction of it covered by another GT instance's box."""
    from pycocotools import mask as mask_utils

    gt = results.gt
    order = np.argsort(gt.img, kind="stable")
    bounds = np.searchsorted(gt.img[order], np.arange(len(results.sample_ids) + 1))
    for i in range(len(results.sample_ids)):
        idx = order[bounds[i]:bounds[i + 1]]
        if len(idx) == 0:
            continue
        if len(idx) == 1:
            gt.occlusion[idx] = 0.0
            continue
        h, w = int(results.heights[i]), int(results.widths[i])
        geoms = [results.gt_geoms[j] for j in idx]
        boxes = (mask_utils.toBbox(geoms).tolist() if results.iou_type == "segm" else [list(g) for g in geoms])
        box_rles = mask_utils.frPyObjects(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), h, w)
        shapes = geoms if results.iou_type == "segm" else box_rles
        # iou with iscrowd=1 is |a & b| / |a|: the share of instance a inside box b
        cover = np.asarray(mask_utils.iou(shapes, box_rles, [1] * len(idx))).reshape(len(idx), len(idx))
        np.fill_diagonal(cover, 0.0)
        gt.occlusion[idx] = cover.max(axis=1)


def compute_boundary_iou(results: EvalResults) -> None:
    """Boundary IoU of every matched (TP or crowd-ignored) prediction and its GT (segm only)."""
    from maskreview.core.evaluation.boundary import boundary_iou_masks

    if results.iou_type != "segm":
        return
    for d in np.flatnonzero(results.pred.match >= 0):
        g = results.pred.match[d]
        i = results.pred.img[d]
        b = boundary_iou_masks(results.gt_masks[g], results.pred_masks[d], int(results.heights[i]),
                               int(results.widths[i]))
        results.pred.biou[d] = b
        if results.gt.match[g] == d:
            results.gt.biou[g] = b
