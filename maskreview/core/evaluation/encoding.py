"""Box masks -> the RLE segmentations, areas and boxes COCO evaluation works on.

A detection's mask is kept as ``(x0, y0, box mask)``: the mask and where its box's top-left
lands in the image (``masks.place_masks``); a mask-less box fills its box.
"""

from __future__ import annotations

from itertools import chain

import numpy as np

from maskreview.core import masks as mk


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


def encode_reusing(entries: list, images: list[dict], annotations: list[dict], results: list[dict], gt_masks: list,
                   pred_masks: list) -> None:
    """:func:`encode_masks`, taking each sample's RLEs, GT areas and boxes from its cache entry
    (``cache.Entry``, GT field first, then predictions) where it has them, and keeping those
    computed now in the entries. Annotations and results are in sample order."""
    n_gt = np.array([len(e.rows[0].oids) for e in entries], np.int64)
    n_pred = np.array([len(e.rows[1].oids) for e in entries], np.int64)
    g0, p0 = np.concatenate(([0], np.cumsum(n_gt))), np.concatenate(([0], np.cumsum(n_pred)))
    todo = [i for i, e in enumerate(entries) if e.rles is None]
    if todo:
        gi = list(chain.from_iterable(range(g0[i], g0[i + 1]) for i in todo))
        pi = list(chain.from_iterable(range(p0[i], p0[i + 1]) for i in todo))
        anns, res = [annotations[k] for k in gi], [results[k] for k in pi]
        encode_masks(images, anns, res, [gt_masks[k] for k in gi], [pred_masks[k] for k in pi])
        a = r = 0
        for i in todo:
            e, ng, npr = entries[i], int(n_gt[i]), int(n_pred[i])
            mine = anns[a:a + ng]
            e.rles = ([x["segmentation"] for x in mine], [x["segmentation"] for x in res[r:r + npr]])
            e.gt_area, e.gt_bbox = [x["area"] for x in mine], [x["bbox"] for x in mine]
            a, r = a + ng, r + npr
        if len(todo) == len(entries):
            return
    done = set(todo)
    kept = [e for i, e in enumerate(entries) if i not in done]
    gk = [k for i in range(len(entries)) if i not in done for k in range(g0[i], g0[i + 1])]
    pk = [k for i in range(len(entries)) if i not in done for k in range(p0[i], p0[i + 1])]
    for k, rle, area, box in zip(gk, chain.from_iterable(e.rles[0] for e in kept),
                                 chain.from_iterable(e.gt_area for e in kept), chain.from_iterable(e.gt_bbox for e in kept)):
        ann = annotations[k]
        ann["segmentation"], ann["area"], ann["bbox"] = rle, area, list(box)
    for k, rle in zip(pk, chain.from_iterable(e.rles[1] for e in kept)):
        results[k]["segmentation"] = rle
