"""Box masks -> the RLE segmentations, areas and boxes COCO evaluation works on.

A detection's mask is kept as ``(x0, y0, box mask)``: the mask and where its box's top-left
lands in the image (``masks.place_masks``); a mask-less box fills its box.
"""

from __future__ import annotations

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
