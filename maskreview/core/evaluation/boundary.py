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
from maskreview.core.evaluation.encoding import box_mask

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
    return float(boundary_ious([(gt, dt)], [height], [width], ratio)[0])


MOSAIC_PIXELS = 1 << 20  # working memory per batch of pairs (bytes per mosaic; 8 MB ones cost page faults: ~15% more CPU)


def boundary_ious(pairs, heights, widths, ratio: float = DILATION_RATIO) -> np.ndarray:
    """Boundary IoU of many ``(gt, dt)`` pairs of ``(x0, y0, box mask)`` (image size per pair).

    Each pair's crop (the box around both masks, clipped to the image) is laid into a mosaic,
    one for the GTs and one for the predictions, with a background row below and a background
    column right of each crop: outside its crop a mask is background (or outside the image,
    which counts as background), and erosion is a minimum, so a pixel whose window leaves its
    crop erodes to 0 in the mosaic as in the image; one erosion per mosaic gives every pair's
    boundary bands exactly. Crops are grouped by width so that little of a mosaic is padding.
    """
    n = len(pairs)
    out = np.zeros(n)
    if n == 0:
        return out
    # geometry[layer] = rows of (x, y, width, height), layer 0 the GTs, 1 the predictions
    geometry = np.array([[(x, y, m.shape[1], m.shape[0]) for x, y, m in pair] for pair in pairs],
                        np.int64).reshape(n, 2, 4).transpose(1, 0, 2)
    h = np.broadcast_to(np.asarray(heights, np.int64), (n,))
    w = np.broadcast_to(np.asarray(widths, np.int64), (n,))
    d = np.maximum(1, np.round(ratio * np.hypot(h, w))).astype(np.int64)
    x, y, bw, bh = geometry[..., 0], geometry[..., 1], geometry[..., 2], geometry[..., 3]
    xs, ys = np.maximum(x, 0), np.maximum(y, 0)  # each mask clipped to the image
    xe, ye = np.minimum(x + bw, w), np.minimum(y + bh, h)
    has = (xe > xs) & (ye > ys)
    big = np.iinfo(np.int64).max // 4
    x0, y0 = np.where(has, xs, big).min(axis=0), np.where(has, ys, big).min(axis=0)
    x1, y1 = np.where(has, xe, -big).max(axis=0), np.where(has, ye, -big).max(axis=0)
    crop = np.stack([x0, y0, x1, y1], axis=1)
    # where each mask lands in its crop, and which part of it
    paste = np.stack([ys - y0, ye - y0, xs - x0, xe - x0, ys - y, ye - y, xs - x, xe - x], axis=-1)
    paste[~has] = 0
    ok = has.any(axis=0)  # else both masks lie outside the image (IoU 0)
    for dd in np.unique(d[ok]).tolist():
        members = np.flatnonzero(ok & (d == dd))
        members = members[np.argsort(x1[members] - x0[members], kind="stable")]
        tile_h = (y1[members] - y0[members] + 1).tolist()
        tile_w = (x1[members] - x0[members]).tolist()
        start, rows = 0, 0
        for i, (th, tw) in enumerate(zip(tile_h, tile_w)):
            if i > start and ((rows + th) * tw > MOSAIC_PIXELS or tw > tile_w[start] * 5 // 4 + 8):
                _mosaic_ious(pairs, members[start:i], crop, paste, tile_w[i - 1], dd, out)
                start, rows = i, 0
            rows += th
        _mosaic_ious(pairs, members[start:], crop, paste, tile_w[-1], dd, out)
    return out


BANDS_WIDTH = 512  # a mosaic's crops lie in side-by-side bands about this wide in all: OpenCV's erosion costs ~3x
# more per pixel on rows of 80 pixels (a tall mosaic of small crops) than on rows of 400 or more


def _mosaic_ious(pairs, members: np.ndarray, crop: np.ndarray, paste: np.ndarray, widest: int, d: int,
                 out: np.ndarray) -> None:
    """Boundary IoU of the pairs ``members`` (crops at most ``widest`` wide), from one mosaic per
    layer: the crops one under the other with a background row below each, in bands
    ``widest + 1`` wide (a background column right of each crop), one band after the other."""
    import cv2

    heights = crop[members, 3] - crop[members, 1] + 1
    ends = np.cumsum(heights)
    starts = ends - heights
    band_w = widest + 1
    share = -(-int(ends[-1]) // max(1, min(len(members), BANDS_WIDTH // band_w)))  # rows a band holds, about
    band = starts // share
    tops = starts - starts[np.searchsorted(band, band)]  # each crop's top row in its band
    n_rows, n_bands = int((tops + heights).max()), int(band[-1]) + 1
    mosaics = np.zeros((2, n_rows, n_bands * band_w), np.uint8)  # GTs, predictions
    at = paste[:, members].copy()  # per layer and pair: its rows and columns in the mosaic, the part of its mask
    at[..., :2] += tops[None, :, None]
    at[..., 2:4] += (band * band_w)[None, :, None]
    for mosaic, layer, rows in zip(mosaics, (0, 1), at.tolist()):  # (offsets added by numpy: ~8% of the stage)
        for j, (r0, r1, c0, c1, mr0, mr1, mc0, mc1) in zip(members.tolist(), rows):
            if r1 > r0:
                mosaic[r0:r1, c0:c1] = pairs[j][layer][2][mr0:mr1, mc0:mc1]
    kernel = np.ones((2 * d + 1, 2 * d + 1), np.uint8)
    gb, pb = (cv2.compare(m, cv2.erode(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0), cv2.CMP_GT)
              for m in mosaics)
    first_rows = band * n_rows + tops  # each crop's first row when the bands' row sums are laid end to end

    def per_crop(both):  # the band rows' sums (cv2.reduce of a band_w-wide view), summed per crop
        rows = cv2.reduce(both.reshape(n_rows * n_bands, band_w), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
        return np.add.reduceat(rows.reshape(n_rows, n_bands).T.ravel(), first_rows)

    inter, union = per_crop(cv2.bitwise_and(gb, pb)), per_crop(cv2.bitwise_or(gb, pb))
    out[members] = np.divide(inter, union, out=np.zeros(len(members)), where=union > 0)


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
    return disagreement_band_masks(box_mask(gt_det, height, width), box_mask(pred_det, height, width), height, width,
                                   ratio)
