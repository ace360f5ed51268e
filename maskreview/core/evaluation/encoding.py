"""Box masks -> the RLE segmentations, areas and boxes COCO evaluation works on.

A detection's mask is kept as ``(x0, y0, box mask)``: the mask and where its box's top-left
lands in the image (``masks.place_masks``); a mask-less box fills its box.
"""

from __future__ import annotations

from itertools import chain

import numpy as np

from maskreview.core import masks as mk
from maskreview.core.evaluation.columns import CocoColumns


def box_mask(det, height: int, width: int) -> tuple[int, int, np.ndarray]:
    """``(x0, y0, mask)``: a detection's mask and where it is pasted (a mask-less box fills its box)."""
    x0, y0, w, h = mk.detection_pixel_box(det, height, width)
    mask = det.mask if det.mask is not None else np.ones((h, w), bool)
    return x0, y0, np.asarray(mask, dtype=bool)


def detection_rle(det, height: int, width: int) -> dict:
    """A detection's full-image RLE (same as ``masks.detection_to_rle``, faster)."""
    return mk.paste_rles([box_mask(det, height, width)], height, width)[0]


def encode_masks(images: list[dict], annotations: list[dict], results: list[dict], gt_masks: list,
                 pred_masks: list) -> None:
    """Fill in the RLE ``segmentation`` of annotations and results (from their ``(x0, y0, box
    mask)``), and the annotations' ``area`` and ``bbox``: all masks in one pass, batched."""
    from pycocotools import mask as mask_utils

    size = {im["id"]: (im["height"], im["width"]) for im in images}
    hw = np.array([size[item["image_id"]] for item in annotations + results], np.int64).reshape(-1, 2)
    rles = mk.paste_rles(gt_masks + pred_masks, hw[:, 0], hw[:, 1])
    for item, rle in zip(annotations + results, rles):
        item["segmentation"] = rle
    gt_rles = rles[:len(annotations)]
    if gt_rles:
        areas, boxes = rle_areas(gt_rles).tolist(), mask_utils.toBbox(gt_rles).tolist()
        for ann, area, box in zip(annotations, areas, boxes):
            ann["area"], ann["bbox"] = area, box


def rle_areas(rles: list) -> np.ndarray:
    """``mask_utils.area`` over a list (pycocotools 2.0.11 overflows past 255 RLEs in one call)."""
    from pycocotools import mask as mask_utils

    return np.concatenate([np.asarray(mask_utils.area(rles[i:i + 255]), dtype=float).reshape(-1)
                           for i in range(0, len(rles), 255)]) if rles else np.zeros(0)


# --------------------------------------------------------------------------------------------
# Box-local: areas, boxes and COCOeval's IoUs without full-image RLEs
# --------------------------------------------------------------------------------------------
#
# pycocotools' ``maskUtils.iou`` of two full-image RLEs is ``i / u`` (``u``: the union, or for a
# crowd GT the detection's area), in double, when the masks share a pixel, and 0 otherwise (its
# box pre-check only skips pairs whose tight boxes do not overlap, which cannot share a pixel).
# Those counts need only the pixels where the two boxes meet, so they are computed here from the
# box masks, clipped to the image as pasting them clips, and only for pairs whose boxes meet.


def clip_masks(items: list, heights, widths) -> list[tuple[int, int, np.ndarray]]:
    """Each box mask ``(x0, y0, mask)`` cut to its image (what pasting it keeps): ``(x, y,
    mask)`` with the mask inside the image (0 x 0 when none of it is)."""
    out = []
    for (x, y, m), h, w in zip(items, np.broadcast_to(heights, (len(items),)).tolist(),
                               np.broadcast_to(widths, (len(items),)).tolist()):
        mh, mw = m.shape[:2]
        if x >= 0 and y >= 0 and x + mw <= w and y + mh <= h and mh and mw:
            out.append((x, y, m))
            continue
        xs, ys, part = mk.visible(x, y, m, h, w)
        out.append((xs, ys, part if part.size else np.zeros((0, 0), bool)))
    return out


def mask_areas(clipped: list) -> np.ndarray:
    """Pixel counts (``mask_utils.area`` of the pasted masks), as floats."""
    return np.array([np.count_nonzero(m) for _, _, m in clipped], float).reshape(-1)


def mask_boxes(clipped: list) -> list[list[float]]:
    """``mask_utils.toBbox`` of the pasted masks: the tight ``[x, y, w, h]``, ``[0, 0, 0, 0]`` when empty."""
    import cv2

    out = []
    for x, y, m in clipped:
        if not m.size:
            out.append([0.0, 0.0, 0.0, 0.0])
            continue
        c0, r0, w, h = cv2.boundingRect(np.ascontiguousarray(m).view(np.uint8))  # of the non-zero pixels
        out.append([float(x + c0), float(y + r0), float(w), float(h)] if w else [0.0, 0.0, 0.0, 0.0])
    return out


def block_ious(annotations: list[dict] | CocoColumns, results: list[dict] | CocoColumns, gt_clipped: list,
               dt_clipped: list, gt_areas: np.ndarray, dt_areas: np.ndarray, max_det: int = 100, skip=()) -> dict:
    """COCOeval's IoU matrix of every (image id, category id) with both GTs and results, as its
    ``computeIoU`` makes it from full-image RLEs: rows the block's results by descending score
    (stable, at most ``max_det``), columns its GTs in annotation order, a crowd GT's entry the
    intersection over the result's area. Blocks in ``skip`` are left out. The annotations and
    results as COCO dicts or as columns."""
    if not len(annotations) or not len(results):
        return {}
    gt = annotations if isinstance(annotations, CocoColumns) else CocoColumns.of(annotations, annotations=True)
    dt = results if isinstance(results, CocoColumns) else CocoColumns.of(results, annotations=False)
    g_img, g_cat, crowd = gt.image_id, gt.category_id, gt.iscrowd
    d_img, d_cat, score = dt.image_id, dt.category_id, dt.score
    k = int(max(g_cat.max(), d_cat.max())) + 1
    gk, dk = g_img * k + g_cat, d_img * k + d_cat
    d_order = np.lexsort((np.arange(len(dk)), -score, dk))
    dk_s = dk[d_order]
    keep = np.arange(len(dk_s)) - np.searchsorted(dk_s, dk_s) < max_det
    d_order, dk_s = d_order[keep], dk_s[keep]
    g_order = np.argsort(gk, kind="stable")
    gk_s = gk[g_order]
    blocks = np.intersect1d(dk_s, gk_s)
    if len(skip):
        blocks = np.array([b for b in blocks.tolist() if (b // k, b % k) not in skip], np.int64)
    if not len(blocks):
        return {}
    d_lo, g_lo = np.searchsorted(dk_s, blocks), np.searchsorted(gk_s, blocks)
    n_d = np.searchsorted(dk_s, blocks, "right") - d_lo
    n_g = np.searchsorted(gk_s, blocks, "right") - g_lo
    sizes = n_d * n_g
    starts = np.concatenate(([0], np.cumsum(sizes)))
    b_of = np.repeat(np.arange(len(blocks)), sizes)
    within = np.arange(int(starts[-1])) - starts[b_of]
    di = d_order[d_lo[b_of] + within // n_g[b_of]]
    gi = g_order[g_lo[b_of] + within % n_g[b_of]]
    iou = mk.clipped_pair_ious(dt_clipped, gt_clipped, dt_areas, gt_areas, di, gi, crowd)
    return {(b // k, b % k): iou[s:e].reshape(nd, ng) for b, s, e, nd, ng in
            zip(blocks.tolist(), starts[:-1].tolist(), starts[1:].tolist(), n_d.tolist(), n_g.tolist())}


class LazyRles:
    """Full-image RLEs of box masks, made a chunk at a time when first asked for (TIDE, the
    analyses, compare: COCOeval itself does not need them). A list for its users: indexing,
    ``len``, iteration; pickled as the plain list of every RLE."""

    CHUNK = 256

    def __init__(self, items: list, heights, widths):
        self._items, self._h, self._w = items, np.asarray(heights, np.int64), np.asarray(widths, np.int64)
        self._rles: list = [None] * len(items)
        self._done = np.zeros(-(-len(items) // self.CHUNK), bool)

    def __len__(self) -> int:
        return len(self._rles)

    def _make(self, c: int) -> None:
        s, e = c * self.CHUNK, min((c + 1) * self.CHUNK, len(self._rles))
        self._rles[s:e] = mk.paste_rles(self._items[s:e], self._h[s:e], self._w[s:e])
        self._done[c] = True

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]
        c = i // self.CHUNK
        if not self._done[c]:
            self._make(c)
        return self._rles[i]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __reduce__(self):
        return list, (list(self),)

    def __eq__(self, other):
        return list(self) == list(other)


def measure_reusing(entries: list, images: list[dict], gt: CocoColumns, results: CocoColumns, gt_masks: list,
                    pred_masks: list) -> tuple:
    """Fills in the annotations' ``area`` and ``bbox`` and the results' ``area`` (COCO's
    definitions: ``mask_utils.area``/``toBbox`` of the masks as pasted) of ``gt`` and
    ``results`` (the rows of ``images``, sorted by image id, as :meth:`CocoColumns.rows` views
    of the whole set's columns: written in place), taking them from each sample's cache entry
    (``entries``, one per image) where it has them and keeping those computed now. Returns
    ``(gt clipped, result clipped, GT areas, result areas)`` for :func:`block_ious`."""
    ids = np.array([im["id"] for im in images], np.int64)
    size = np.array([(im["height"], im["width"]) for im in images], np.int64).reshape(-1, 2)
    g_at, d_at = np.searchsorted(ids, gt.image_id), np.searchsorted(ids, results.image_id)
    hw = size[np.concatenate((g_at, d_at))]
    clipped = clip_masks(list(gt_masks) + list(pred_masks), hw[:, 0], hw[:, 1])
    n = len(gt)
    gt_c, dt_c = clipped[:n], clipped[n:]
    # (an entry no cache keeps has no rows: cache.Entry.kept)
    n_gt, n_pred = (np.bincount(x, minlength=len(images)) for x in (g_at, d_at))
    g0, p0 = np.concatenate(([0], np.cumsum(n_gt))).tolist(), np.concatenate(([0], np.cumsum(n_pred))).tolist()
    todo = [i for i, e in enumerate(entries) if e.gt_area is None or e.pred_area is None]
    gt_area, dt_area, boxes = gt.area, results.area, gt.bbox
    if len(todo) == len(entries):  # nothing kept (a first run): every mask measured
        gt_area[:], dt_area[:] = mask_areas(gt_c), mask_areas(dt_c)
        boxes[:] = np.array(mask_boxes(gt_c), float).reshape(-1, 4)
    else:
        gi = list(chain.from_iterable(range(g0[i], g0[i + 1]) for i in todo))
        pi = list(chain.from_iterable(range(p0[i], p0[i + 1]) for i in todo))
        if gi:
            gt_area[gi] = mask_areas([gt_c[k] for k in gi])
            boxes[gi] = np.array(mask_boxes([gt_c[k] for k in gi]), float).reshape(-1, 4)
        if pi:
            dt_area[pi] = mask_areas([dt_c[k] for k in pi])
        done = set(todo)
        for i, e in enumerate(entries):
            if i not in done:
                gt_area[g0[i]:g0[i + 1]], dt_area[p0[i]:p0[i + 1]] = e.gt_area, e.pred_area
                boxes[g0[i]:g0[i + 1]] = e.gt_bbox
    for i in todo:
        e = entries[i]
        if e.kept:  # (one no cache keeps is not looked at again); copies: not views of the span's arrays
            e.gt_area, e.gt_bbox = gt_area[g0[i]:g0[i + 1]].copy(), boxes[g0[i]:g0[i + 1]].copy()
            e.pred_area = dt_area[p0[i]:p0[i + 1]].copy()
    return gt_c, dt_c, gt_area, dt_area
