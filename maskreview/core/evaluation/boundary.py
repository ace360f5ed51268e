"""Boundary IoU (Cheng et al., CVPR 2021) and the band where a prediction and its GT disagree.

A mask's boundary region is the set of its pixels within ``d`` of its contour: the mask minus
its erosion by a ``(2d+1)``-square, with the outside of the image counting as background.
``d`` is 2% of the image diagonal (at least one pixel). Boundary IoU is the IoU of the two
boundary regions. Work is done in a crop around both box masks, so it costs little per pair.
"""

from __future__ import annotations

import math

import numpy as np

from maskreview.core import masks as mk

DILATION_RATIO = 0.02


def boundary_width(height: int, width: int, ratio: float = DILATION_RATIO) -> int:
    return max(1, int(round(ratio * math.hypot(height, width))))


def _crop_box(boxes, d: int, height: int, width: int):
    x0 = min(b[0] for b in boxes) - d - 1
    y0 = min(b[1] for b in boxes) - d - 1
    x1 = max(b[0] + b[2] for b in boxes) + d + 1
    y1 = max(b[1] + b[3] for b in boxes) + d + 1
    return max(0, int(x0)), max(0, int(y0)), min(width, int(math.ceil(x1))), min(height, int(math.ceil(y1)))


def _inner_band(mask: np.ndarray, d: int) -> np.ndarray:
    import cv2

    kernel = np.ones((2 * d + 1, 2 * d + 1), np.uint8)
    eroded = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return mask & ~eroded.astype(bool)


def _rle_box_mask(rle: dict):
    from pycocotools import mask as mask_utils

    x, y, w, h = (int(round(v)) for v in mask_utils.toBbox(rle))
    return x, y, mk.decode_rle(rle)[y:y + h, x:x + w]


def _crops(gt, dt, height: int, width: int, ratio: float):
    """Both ``(x0, y0, box mask)`` pasted into one crop with a margin of ``d + 1`` around them."""
    d = boundary_width(height, width, ratio)
    boxes = [(x, y, m.shape[1], m.shape[0]) for x, y, m in (gt, dt) if m.size]
    if not boxes:
        return None, d, (0, 0, 0, 0)
    x0, y0, x1, y1 = _crop_box(boxes, d, height, width)
    out = []
    for x, y, m in (gt, dt):
        canvas = np.zeros((y1 - y0, x1 - x0), bool)
        xs, ys, xe, ye = max(x, x0), max(y, y0), min(x + m.shape[1], x1), min(y + m.shape[0], y1)
        if xe > xs and ye > ys:
            canvas[ys - y0:ye - y0, xs - x0:xe - x0] = m[ys - y:ye - y, xs - x:xe - x]
        out.append(canvas)
    return out, d, (x0, y0, x1, y1)


def boundary_iou_masks(gt, dt, height: int, width: int, ratio: float = DILATION_RATIO) -> float:
    """Boundary IoU of two ``(x0, y0, box mask)`` in an image of the given size."""
    pair, d, _ = _crops(gt, dt, height, width, ratio)
    if pair is None:
        return 0.0
    gb, pb = _inner_band(pair[0], d), _inner_band(pair[1], d)
    union = np.count_nonzero(gb | pb)
    return float(np.count_nonzero(gb & pb) / union) if union else 0.0


def boundary_iou(gt_rle: dict, dt_rle: dict, ratio: float = DILATION_RATIO) -> float:
    """Boundary IoU of two full-image RLE masks (0 when both are empty)."""
    height, width = (int(s) for s in gt_rle["size"])
    return boundary_iou_masks(_rle_box_mask(gt_rle), _rle_box_mask(dt_rle), height, width, ratio)


def disagreement_band_masks(gt, dt, height: int, width: int, ratio: float = DILATION_RATIO) -> np.ndarray:
    """Full-image bitmap of pixels where the masks differ inside either boundary region."""
    out = np.zeros((height, width), dtype=bool)
    pair, d, (x0, y0, x1, y1) = _crops(gt, dt, height, width, ratio)
    if pair is None:
        return out
    g, p = pair
    out[y0:y1, x0:x1] = (g ^ p) & (_inner_band(g, d) | _inner_band(p, d))
    return out


def disagreement_band(gt_rle: dict, dt_rle: dict, ratio: float = DILATION_RATIO) -> np.ndarray:
    height, width = (int(s) for s in gt_rle["size"])
    return disagreement_band_masks(_rle_box_mask(gt_rle), _rle_box_mask(dt_rle), height, width, ratio)


def detections_disagreement_band(gt_det, pred_det, height: int, width: int, ratio: float = DILATION_RATIO):
    """:func:`disagreement_band` for two ``fo.Detection`` of an image of the given size."""
    from maskreview.core.evaluation.coco import box_mask

    return disagreement_band_masks(box_mask(gt_det, height, width), box_mask(pred_det, height, width), height, width,
                                   ratio)
