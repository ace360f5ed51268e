"""Boundary IoU (Cheng et al., CVPR 2021) and the band where a prediction and its GT disagree.

A mask's boundary region is the set of its pixels within ``d`` of its contour: the mask minus
its erosion by a ``(2d+1)``-square, with the outside of the image counting as background.
``d`` is 2% of the image diagonal (at least one pixel). Boundary IoU is the IoU of the two
boundary regions. Work is done in a crop around both masks, so it costs little per pair.
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


def _crops(gt_rle: dict, dt_rle: dict, ratio: float):
    from pycocotools import mask as mask_utils

    height, width = (int(s) for s in gt_rle["size"])
    d = boundary_width(height, width, ratio)
    boxes = [b for b in mask_utils.toBbox([gt_rle, dt_rle]).tolist() if b[2] > 0 and b[3] > 0]
    if not boxes:
        return None, d, (0, 0, 0, 0)
    x0, y0, x1, y1 = _crop_box(boxes, d, height, width)
    g = mk.decode_rle(gt_rle)[y0:y1, x0:x1]
    p = mk.decode_rle(dt_rle)[y0:y1, x0:x1]
    return (g, p), d, (x0, y0, x1, y1)


def boundary_iou(gt_rle: dict, dt_rle: dict, ratio: float = DILATION_RATIO) -> float:
    """Boundary IoU of two full-image RLE masks (0 when both are empty)."""
    pair, d, _ = _crops(gt_rle, dt_rle, ratio)
    if pair is None:
        return 0.0
    gb, pb = _inner_band(pair[0], d), _inner_band(pair[1], d)
    union = np.count_nonzero(gb | pb)
    return float(np.count_nonzero(gb & pb) / union) if union else 0.0


def disagreement_band(gt_rle: dict, dt_rle: dict, ratio: float = DILATION_RATIO) -> np.ndarray:
    """Full-image bitmap of pixels where the masks differ inside either boundary region."""
    height, width = (int(s) for s in gt_rle["size"])
    out = np.zeros((height, width), dtype=bool)
    pair, d, (x0, y0, x1, y1) = _crops(gt_rle, dt_rle, ratio)
    if pair is None:
        return out
    g, p = pair
    out[y0:y1, x0:x1] = (g ^ p) & (_inner_band(g, d) | _inner_band(p, d))
    return out


def detections_disagreement_band(gt_det, pred_det, height: int, width: int, ratio: float = DILATION_RATIO):
    """:func:`disagreement_band` for two ``fo.Detection`` of an image of the given size."""
    return disagreement_band(mk.detection_to_rle(gt_det, height, width), mk.detection_to_rle(pred_det, height, width),
                             ratio)
