"""COCOeval's numbers from faster-coco-eval's C++ core (pycocotools stays the reference: the
identity tests compare every value with it).

pycocotools' ``COCOeval.evaluateImg`` and ``accumulate`` are Python loops over every (class,
area range, image): about 80% of an evaluation's time. faster-coco-eval runs the same algorithm
in C++ (its ``COCOeval_faster``, a drop-in COCOeval) and gives the same matches, IoUs, recall
and scores; precision agrees to the last bit but one (pycocotools divides by ``tp + fp +
spacing(1)``, the C++ core by ``tp + fp``, so a precision of exactly 1 reads 0.9999999999999998
in pycocotools), and the summary within 1e-15.

Besides COCOeval's own results we need its per-detection matches, which the C++ core keeps in
opaque per-image objects: their pickled state (``__getstate__``: detection matches, GT matches,
scores, GT ignores, detection ignores per IoU threshold) is read for area "all", and the order
of the rows and columns is COCOeval's documented rule, rebuilt here for all blocks at once:
detections by descending score (stable, at most ``maxDets[-1]``), GTs with ignored ones last.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from dataclasses import dataclass

import numpy as np

from maskreview.core.evaluation.encoding import rle_areas


@dataclass
class PairBlock:
    """COCOeval's IoU matrix for one (image, class) at area "all": rows by score, columns ignored-last."""

    preds: np.ndarray  # row -> prediction index
    gts: np.ndarray  # column -> GT index
    ious: np.ndarray
    gt_ignore: np.ndarray
    gt_crowd: np.ndarray


@dataclass
class Matches:
    """COCOeval's matches at area "all" for every (class, image) with a GT or a detection,
    blocks in COCOeval's order (class, then image), flattened: row ``r`` is prediction
    ``preds[r]`` in block ``block[r]``; column ``c`` is GT ``gts[c]`` in block ``gt_block[c]``."""

    preds: np.ndarray  # prediction index per row (score order within a block)
    block: np.ndarray  # block of each row
    gts: np.ndarray  # GT index per column (ignored GTs last within a block)
    gt_block: np.ndarray
    gt_ignore: np.ndarray  # bool per column
    raw_col: np.ndarray  # per GT index: its column in COCOeval's IoU matrix (GTs in annotation order)
    keys: np.ndarray  # [blocks, 2]: (image id, category id) per block (an array: 500,000 blocks at 100,000 images)
    dt_matches: np.ndarray  # flat [T, rows of the block] per block: matched GT annotation id, 0 = none
    dt_ignore: np.ndarray  # flat like dt_matches
    n_rows: np.ndarray  # rows per block
    n_cols: np.ndarray  # columns per block
    n_thr: int

    def at(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """``(matched GT index or -1, ignored)`` per row at IoU threshold index ``t``."""
        start = np.concatenate(([0], np.cumsum(self.n_rows)[:-1]))
        flat_start = self.n_thr * start  # each block holds [T, n] values
        within = np.arange(len(self.preds)) - np.repeat(start, self.n_rows)
        idx = np.repeat(flat_start + t * self.n_rows, self.n_rows) + within
        return self.dt_matches[idx] - 1, self.dt_ignore[idx].astype(bool)


@dataclass
class Evaluation:
    evaluator: object  # faster-coco-eval's COCOeval_faster after evaluate() (accumulate() next)
    areas: np.ndarray  # each result's area, as loadRes computes it
    matches: Matches
    accumulated: bool = False  # the evaluator's ``eval`` is made (chunks.Chunked, class by class)
    # every block's IoU matrix ([rows, columns] as COCOeval's), flattened in the matches' block
    # order (chunks.Chunked: one array, not a dict of 500,000 small ones at 100,000 images);
    # None: the evaluator's own ``ious`` dict
    ious: np.ndarray | None = None

    def flat_ious(self) -> np.ndarray:
        if self.ious is None:
            self.ious = flatten_ious(self.evaluator.ious, self.matches.keys)
        return self.ious

    def match_ious(self, rows: np.ndarray, gts: np.ndarray) -> np.ndarray:
        """COCOeval's IoU of prediction row ``rows[i]`` with GT ``gts[i]`` (of the same block)."""
        m = self.matches
        if not len(rows):
            return np.zeros(0)
        flat = self.flat_ious()
        start = np.concatenate(([0], np.cumsum(m.n_rows * m.n_cols)[:-1]))
        row_start = np.concatenate(([0], np.cumsum(m.n_rows)[:-1]))
        b = m.block[rows]
        return flat[start[b] + (rows - row_start[b]) * m.n_cols[b] + m.raw_col[gts]]

    def blocks(self, gt_crowd: np.ndarray) -> list[PairBlock]:
        """COCOeval's IoU matrix of every (image, class), for re-matching at other thresholds."""
        m, flat = self.matches, self.flat_ious()
        rows = np.split(m.preds, np.cumsum(m.n_rows)[:-1])
        cols = np.split(m.gts, np.cumsum(m.n_cols)[:-1])
        ignores = np.split(m.gt_ignore, np.cumsum(m.n_cols)[:-1])
        start = np.concatenate(([0], np.cumsum(m.n_rows * m.n_cols))).tolist()
        out = []
        for b, (dt, gt, ig) in enumerate(zip(rows, cols, ignores)):
            if len(dt) and len(gt):
                block = flat[start[b]:start[b + 1]].reshape(len(dt), len(gt))[:, m.raw_col[gt]]
            else:
                block = np.zeros((len(dt), len(gt)))
            out.append(PairBlock(dt, gt, block, ig, gt_crowd[gt]))
        return out


def flatten_ious(ious: dict, keys: list) -> np.ndarray:
    """The IoU matrices ``ious[key]`` of ``keys``, each raveled, one after the other."""
    parts = [np.asarray(ious[img, cat], float).ravel() for img, cat in np.asarray(keys).tolist()]
    return np.concatenate(parts) if parts else np.zeros(0)


def _group_order(block_of: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Stable order by block, then by ``keys`` (the first key most significant)."""
    return np.lexsort((np.arange(len(block_of)), *reversed(keys), block_of))


def evaluate(gt: dict, results: list[dict], iou_type: str, known_ious: dict | None = None) -> Evaluation:
    """COCOeval's ``evaluate()`` over a COCO instances dict and COCO results (RLE
    segmentations for segm, boxes for bbox); the caller's dicts are not changed.

    ``known_ious``: ``{(image id, category id): IoU matrix}`` from an earlier run over the same
    labels (``cache.Entry.ious``) or computed box-locally (``encoding.block_ious``: then the
    segm annotations and results need no ``segmentation``, only their ``area``), used instead
    of computing them again; the IoUs of every
    (image, category) are in ``evaluator.ious`` afterwards."""
    from faster_coco_eval import COCO
    from faster_coco_eval.core.faster_eval_api import COCOeval_faster

    _rles_as_given()

    quiet = lambda *args, **kw: None
    coco_gt, coco_dt = COCO(), COCO()
    coco_gt.print_function = coco_dt.print_function = quiet
    coco_gt.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
    coco_dt.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": _results(results)}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt.createIndex()
    if iou_type == "segm":  # compressed RLEs: what faster-coco-eval would compute from them (_rles_as_given)
        for ann in itertools.chain(coco_gt.dataset["annotations"], coco_dt.dataset["annotations"]):
            seg = ann.get("segmentation")
            if isinstance(seg, dict) and isinstance(seg.get("counts"), (bytes, str)):
                ann["rle"] = seg
            elif seg is None:  # box-local: every IoU is in known_ious (encoding.block_ious), no RLE needed
                ann["rle"] = None
    ev = COCOeval_faster(coco_gt, coco_dt, iou_type, print_function=quiet, separate_eval=True,
                         rle_iou_max_workers=1)
    if known_ious:
        compute = ev.computeIoU
        ev.computeIoU = lambda img, cat: known_ious[img, cat] if (img, cat) in known_ious else compute(img, cat)
    ev.evaluate()
    if known_ious:  # (the lambda holds the bound method, which holds ev: a cycle that keeps each
        del ev.computeIoU  # chunk's COCO objects and IoUs until a cyclic collection, none during a run)
    areas = np.array([a["area"] for a in coco_dt.dataset["annotations"]], float)
    return Evaluation(ev, areas, _matches(ev, gt["annotations"], results, areas))


def _rles_as_given() -> None:
    """faster-coco-eval's ``_prepare`` turns every annotation's segmentation into the RLE its IoU
    works on (``ann["rle"]``), one C++ call for all; for a compressed RLE (what ``encoding``
    makes) that RLE is the segmentation itself, so annotations given an ``rle`` are skipped
    (about a fifth of a rerun's COCOeval time). Installed once; others are converted as before."""
    from faster_coco_eval.core import cocoeval

    convert = cocoeval.maskUtils.calculateRleForAllAnnotations
    if getattr(convert, "maskreview", False):
        return

    def where_missing(anns, img_sizes, compute_rle, compute_boundary, *rest):
        if compute_rle and not compute_boundary:
            anns = [a for a in anns if "rle" not in a]
        if anns:
            convert(anns, img_sizes, compute_rle, compute_boundary, *rest)

    where_missing.maskreview = True
    cocoeval.maskUtils.calculateRleForAllAnnotations = where_missing


def _results(results: list[dict]) -> list[dict]:
    """COCO results as ``COCO.loadRes`` makes them (ids from 1, iscrowd 0; a box's area is its
    ``w * h``, a segmentation's its pixel count and its box the mask's), areas and boxes
    computed for all results in a few batched calls instead of one per result."""
    from pycocotools import mask as mask_utils

    out = [dict(r, id=i + 1, iscrowd=0) for i, r in enumerate(results)]
    if not out:
        return out
    if "bbox" in out[0] and out[0]["bbox"] != []:  # loadRes looks at the first result only
        for r in out:
            x, y, w, h = r["bbox"]
            r["area"] = w * h
            r.setdefault("segmentation", [[x, y, x, y + h, x + w, y + h, x + w, y]])
    elif "segmentation" not in out[0] and "area" in out[0]:  # box-local (encoding.measure_reusing): areas given
        pass
    else:
        rles = [r["segmentation"] for r in out]
        areas, boxes = rle_areas(rles).tolist(), mask_utils.toBbox(rles).tolist()
        for r, area, box in zip(out, areas, boxes):
            r["area"] = area
            r.setdefault("bbox", box)
    return out


def _matches(ev, annotations: list[dict], results: list[dict], areas: np.ndarray) -> Matches:
    p = ev.params
    img_ids, cat_ids = list(p.imgIds), list(p.catIds)
    n_img, n_area, n_thr, max_det = len(img_ids), len(p.areaRng), len(p.iouThrs), p.maxDets[-1]
    img_index = {v: i for i, v in enumerate(img_ids)}
    cat_index = {v: k for k, v in enumerate(cat_ids)}
    lo, hi = p.areaRng[0]

    def block_of(items):
        return np.array([cat_index.get(x["category_id"], -1) * n_img + img_index[x["image_id"]] for x in items],
                        np.int64).reshape(-1)

    # predictions: by block, then descending score (stable), at most max_det per block
    d_block = block_of(results)
    scores = np.array([r["score"] for r in results], float).reshape(-1)
    order = _group_order(d_block, -scores)
    order = order[d_block[order] >= 0]  # categories COCOeval does not know are ignored
    sorted_block = d_block[order]
    first = np.searchsorted(sorted_block, sorted_block)
    order = order[np.arange(len(order)) - first < max_det]
    # GTs: by block, then ignored last (stable); their column in COCOeval's IoU matrix is their
    # position in annotation order within the block
    g_block = block_of(annotations)
    g_area = np.array([a["area"] for a in annotations], float).reshape(-1)
    ignore = np.array([bool(a.get("iscrowd", 0)) for a in annotations], bool).reshape(-1)
    ignore |= (g_area < lo) | (g_area > hi)
    g_order = _group_order(g_block, ignore.astype(np.int64))
    by_block = np.argsort(g_block, kind="stable")
    raw_col = np.empty(len(annotations), np.int64)
    raw_col[by_block] = np.arange(len(by_block)) - np.searchsorted(g_block[by_block], g_block[by_block])

    blocks = np.union1d(d_block[order], g_block[g_order]).astype(np.int64)
    n_rows = np.bincount(np.searchsorted(blocks, d_block[order]), minlength=len(blocks))
    n_cols = np.bincount(np.searchsorted(blocks, g_block[g_order]), minlength=len(blocks))
    per_image = ev._evalImgs_cpp  # [class][area range][image]
    states = [per_image[(b // n_img) * n_area * n_img + b % n_img].__getstate__() for b in blocks.tolist()]
    dt_matches = np.fromiter(itertools.chain.from_iterable(s[0] for s in states), np.int64)
    dt_ignore = np.fromiter(itertools.chain.from_iterable(s[4] for s in states), bool)
    if len(dt_matches) != n_thr * len(order):
        raise RuntimeError("faster-coco-eval's per-image results do not have COCOeval's layout")
    keys = np.stack([np.asarray(img_ids, np.int64)[blocks % max(n_img, 1)],
                     np.asarray(cat_ids, np.int64)[blocks // max(n_img, 1)]], axis=1).reshape(-1, 2)
    return Matches(order, np.repeat(np.arange(len(blocks)), n_rows), g_order, np.repeat(np.arange(len(blocks)), n_cols),
                   ignore[g_order], raw_col, keys, dt_matches, dt_ignore, n_rows, n_cols, n_thr)


def accumulate(evaluation: Evaluation):
    """COCOeval's ``accumulate`` and ``summarize`` (C++), quietly; returns the evaluator."""
    ev = evaluation.evaluator
    ev.accumulate()
    ev.summarize()
    return ev
