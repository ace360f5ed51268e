"""Exact conversions between COCO polygons / RLE, full-image bitmaps and FiftyOne detections.

FiftyOne's ``Detection`` is the data model: ``bounding_box`` is ``[x, y, w, h]`` relative to the
image and ``mask`` is a boolean array covering the box. Our convention makes the round trip
exact: the box is the mask's tight pixel box divided by the image size, and a box mask is pasted
back at the box's top-left rounded to the nearest pixel, with the mask's own shape. (FiftyOne's
``Detection.to_segmentation()`` resizes the mask to the box instead, which loses pixels.)

All RLE work goes through pycocotools, so areas, boxes and IoUs agree with COCOeval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Number

import numpy as np
from pycocotools import mask as mask_utils

from maskreview.core.errors import BadInputError


class MaskError(BadInputError):
    """A segmentation that cannot be decoded (malformed polygon, RLE of the wrong size...)."""


def _round(v: float) -> int:
    return int(math.floor(v + 0.5))


# --------------------------------------------------------------------------------------------
# COCO segmentation <-> bitmap / RLE
# --------------------------------------------------------------------------------------------

def coco_to_rle(segmentation, height: int, width: int) -> dict:
    """A COCO ``segmentation`` (polygons, uncompressed or compressed RLE) as compressed RLE."""
    if isinstance(segmentation, list):
        polygons = _check_polygons(segmentation)
        if not polygons:
            return encode_rle(np.zeros((height, width), dtype=bool))
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        size = list(segmentation["size"])
        if size != [height, width]:
            raise MaskError(f"RLE size {size} does not match the image size {[height, width]}")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            if sum(counts) != height * width:
                raise MaskError(f"uncompressed RLE counts sum to {sum(counts)}, not {height * width}")
            return mask_utils.frPyObjects(segmentation, height, width)
        if isinstance(counts, (str, bytes)):
            return {"size": size, "counts": counts.encode() if isinstance(counts, str) else counts}
    raise MaskError(f"segmentation is neither polygons nor RLE: {str(segmentation)[:80]}")


def _check_polygons(segmentation: list) -> list[list[float]]:
    polygons = []
    for i, poly in enumerate(segmentation):
        if not isinstance(poly, (list, tuple)) or not all(
            isinstance(v, Number) and not isinstance(v, bool) and math.isfinite(v) for v in poly
        ):
            raise MaskError(f"polygon {i} is not a flat list of numbers")
        if len(poly) % 2:
            raise MaskError(f"polygon {i} has an odd number of coordinates ({len(poly)})")
        if len(poly) < 6:
            raise MaskError(f"polygon {i} has {len(poly) // 2} points; a polygon needs at least 3")
        polygons.append([float(v) for v in poly])
    return polygons


def coco_to_bitmap(segmentation, height: int, width: int) -> np.ndarray:
    """A COCO segmentation as a full-image boolean bitmap, exactly as ``COCO.annToMask``."""
    return decode_rle(coco_to_rle(segmentation, height, width))


def encode_rle(bitmap: np.ndarray) -> dict:
    """A full-image bitmap as compressed RLE (``counts`` bytes, as pycocotools returns it)."""
    return mask_utils.encode(np.asfortranarray(bitmap, dtype=np.uint8))


def decode_rle(rle: dict) -> np.ndarray:
    return mask_utils.decode(rle).astype(bool)


def rle_to_json(rle: dict) -> dict:
    """RLE with ``counts`` as str, ready for ``json.dump``."""
    counts = rle["counts"]
    return {"size": [int(s) for s in rle["size"]], "counts": counts.decode() if isinstance(counts, bytes) else counts}


def bitmap_to_polygons(bitmap: np.ndarray, tolerance: float = 0.0) -> list[list[float]]:
    """Outer contours of a bitmap as COCO polygons (lossy: holes are not represented).

    Use RLE to store masks; polygons are for editing outlines and for tools that need them.
    Contours are traced on a 2x upsampled mask so that vertices sit a quarter pixel inside the
    pixel edges instead of on pixel centres; rasterizing them gives the pixels back.
    """
    import cv2

    up = np.kron(bitmap.astype(np.uint8), np.ones((2, 2), np.uint8))
    method = cv2.CHAIN_APPROX_SIMPLE if tolerance <= 0 else cv2.CHAIN_APPROX_NONE
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, method)
    polygons = []
    for contour in contours:
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, tolerance * 2, True)
        points = (contour.reshape(-1, 2).astype(float) + 0.5) / 2
        if len(points) >= 3:
            polygons.append(points.reshape(-1).tolist())
    return polygons


# --------------------------------------------------------------------------------------------
# bitmap <-> FiftyOne detection
# --------------------------------------------------------------------------------------------

def mask_bbox(bitmap: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight pixel box ``(x, y, w, h)`` of a bitmap, ``None`` if it is empty."""
    rows = np.flatnonzero(bitmap.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(bitmap.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def bitmap_to_detection(
    bitmap: np.ndarray,
    label: str,
    empty_box: Sequence[float] | None = None,
    **attributes,
):
    """A full-image bitmap as a ``fo.Detection`` with a tight box and a box-relative mask.

    An empty bitmap keeps ``empty_box`` (pixels ``[x, y, w, h]``, e.g. the COCO bbox) with an
    all-false mask, so the instance is not silently dropped.
    """
    from maskreview.core.store import fiftyone

    fo = fiftyone()
    height, width = bitmap.shape
    box = mask_bbox(bitmap)
    if box is None:
        x, y, w, h = empty_box if empty_box is not None else (0, 0, 1, 1)
        mw, mh = max(1, _round(w)), max(1, _round(h))
        mask = np.zeros((mh, mw), dtype=bool)
        rel = [x / width, y / height, w / width, h / height]
    else:
        x, y, w, h = box
        mask = np.ascontiguousarray(bitmap[y : y + h, x : x + w], dtype=bool)
        rel = [x / width, y / height, w / width, h / height]
    return fo.Detection(label=label, bounding_box=rel, mask=mask, **attributes)


def detection_pixel_box(detection, height: int, width: int) -> tuple[int, int, int, int]:
    """The pixel box ``(x, y, w, h)`` a detection's mask is pasted into (unclipped)."""
    bx, by, bw, bh = detection.bounding_box
    x0, y0 = _round(bx * width), _round(by * height)
    mask = detection.mask
    if mask is not None:
        mh, mw = mask.shape[:2]
    else:
        mw, mh = max(0, _round((bx + bw) * width) - x0), max(0, _round((by + bh) * height) - y0)
    return x0, y0, mw, mh


def detection_to_bitmap(detection, height: int, width: int) -> np.ndarray:
    """Paste a detection's box mask into a full-image bitmap (a mask-less box fills its box)."""
    out = np.zeros((height, width), dtype=bool)
    x0, y0, w, h = detection_pixel_box(detection, height, width)
    xs, ys = max(x0, 0), max(y0, 0)
    xe, ye = min(x0 + w, width), min(y0 + h, height)
    if xe <= xs or ye <= ys:
        return out
    mask = detection.mask
    if mask is None:
        out[ys:ye, xs:xe] = True
    else:
        out[ys:ye, xs:xe] = np.asarray(mask, dtype=bool)[ys - y0 : ye - y0, xs - x0 : xe - x0]
    return out


def detection_to_rle(detection, height: int, width: int) -> dict:
    return encode_rle(detection_to_bitmap(detection, height, width))


def paste_rles(items: Sequence[tuple[int, int, np.ndarray]], heights, widths) -> list[dict]:
    """Full-image RLEs of box masks ``(x0, y0, mask)`` pasted (clipped) into images of the given
    sizes (one per item), equal to ``encode_rle`` of the pasted bitmaps.

    Done in RLE space for all items at once: each clipped box mask is laid out column by column
    with a background pixel above and below each column, one pass finds every run boundary, and
    the boundaries are moved to full-image positions arithmetically. No full-image bitmap is
    made, and the per-mask Python work is a slice assignment.
    """
    n = len(items)
    if n == 0:
        return []
    heights = np.broadcast_to(np.asarray(heights, np.int64), (n,))
    widths = np.broadcast_to(np.asarray(widths, np.int64), (n,))
    x0, y0, mh, mw = np.array([(x, y, *m.shape[:2]) for x, y, m in items], np.int64).reshape(n, 4).T
    xs, ys = np.maximum(x0, 0), np.maximum(y0, 0)
    hs = np.maximum(np.minimum(y0 + mh, heights) - ys, 0)
    ws = np.maximum(np.minimum(x0 + mw, widths) - xs, 0)
    hs[ws == 0] = ws[hs == 0] = 0
    size = ws * (hs + 2)
    starts = np.concatenate(([0], np.cumsum(size)))
    buf = np.zeros(int(starts[-1]) + 1, np.uint8)  # columns of (background, mask column, background)
    clipped = ((xs != x0) | (ys != y0) | (hs != mh) | (ws != mw)).tolist()
    for (x, y, m), s, e, h, cut in zip(items, starts[:-1].tolist(), starts[1:].tolist(), (hs + 2).tolist(), clipped):
        if e > s:
            if cut:
                m = m[max(-y, 0):max(-y, 0) + h - 2, max(-x, 0):max(-x, 0) + (e - s) // h]
            buf[s:e].reshape(-1, h)[:, 1:-1] = m.T
    t = np.flatnonzero(buf[1:] != buf[:-1]) + 1  # where a run starts, in the padded layout
    k = np.repeat(np.arange(n), np.diff(np.searchsorted(t, starts)))  # the item of each
    col, row = np.divmod(t - starts[k], (hs + 2)[k])
    pos = col * heights[k] + (xs * heights + ys - 1)[k] + row  # the same boundary in the image
    # a column ending on the image's last row and the next starting on its first: one run
    joined = (pos[1:] == pos[:-1]) & (k[1:] == k[:-1])
    if joined.any():
        keep = np.ones(len(pos), bool)
        keep[1:][joined] = keep[:-1][joined] = False
        pos, k = pos[keep], k[keep]
    bounds = np.searchsorted(k, np.arange(n + 1))
    # counts of item j: diff of [0, boundaries of j..., height * width]
    ext = np.empty(len(pos) + 2 * n, np.int64)
    ext[np.arange(len(pos)) + 2 * k + 1] = pos
    ext[bounds[:-1] + 2 * np.arange(n)] = 0
    ext[bounds[1:] + 2 * np.arange(n) + 1] = heights * widths
    counts = np.diff(ext)
    first = (bounds[:-1] + 2 * np.arange(n)).tolist()
    # the last count is 0 where the last run reaches the end of the image: dropped, as COCO does
    at_end = np.zeros(n, np.int64)
    some = bounds[1:] > bounds[:-1]
    at_end[some] = pos[bounds[1:][some] - 1] == (heights * widths)[some]
    last = (bounds[1:] + 2 * np.arange(n) + 1 - at_end).tolist()
    objs = [{"size": [h, w], "counts": counts[a:b]}
            for h, w, a, b in zip(heights.tolist(), widths.tolist(), first, last)]
    return mask_utils.frPyObjects(objs, int(heights[0]), int(widths[0]))


def detection_area(detection, height: int, width: int) -> int:
    """Visible pixel count of a detection's mask inside the image."""
    return int(detection_to_bitmap(detection, height, width).sum())
