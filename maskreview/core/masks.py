"""Exact conversions between COCO polygons / RLE, full-image bitmaps and FiftyOne detections.

FiftyOne's ``Detection`` is the data model: ``bounding_box`` is ``[x, y, w, h]`` relative to the
image and ``mask`` is a boolean array covering the box. Our convention makes the round trip
exact: the box is the mask's tight pixel box divided by the image size, and a box mask is pasted
back at the box's top-left rounded to the nearest pixel, with the mask's own shape. (FiftyOne's
``Detection.to_segmentation()`` resizes the mask to the box instead, which loses pixels.)

All RLE work goes through pycocotools, so areas, boxes and IoUs agree with COCOeval.

This module is the one home of that geometry: the rounding rule (:func:`round_half_up`), where a
box mask lands (:func:`detection_pixel_box`, :func:`place_masks`), pasting and clipping
(:func:`clip_box`, :func:`pixel_window`, :func:`union_box`, :func:`paste`), the tight box (:func:`mask_bbox`), mask IoU (:func:`placed_iou`,
:func:`bitmap_iou`, :func:`geometry_ious`) and RLE. Nothing else reimplements them (``tests/test_geometry_home.py``).
Decoding the stored mask bytes is the store's (``core/store``), not this module's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from maskreview.core.errors import BadInputError
from maskreview.core.store import fiftyone


class MaskError(BadInputError):
    """A segmentation that cannot be decoded (malformed polygon, RLE of the wrong size...)."""


def round_half_up(v):
    """The rounding rule of pixel positions: ``floor(v + 0.5)`` (0.5 rounds up, -0.5 to 0).

    A float gives an int; an array gives an int64 array (the same rule, for many boxes at once).
    """
    if isinstance(v, np.ndarray):
        return np.floor(v + 0.5).astype(np.int64)
    return int(math.floor(v + 0.5))


# --------------------------------------------------------------------------------------------
# COCO segmentation <-> bitmap / RLE
# --------------------------------------------------------------------------------------------

def coco_to_rle(segmentation, height: int, width: int) -> dict:
    """A COCO ``segmentation`` (polygons, uncompressed or compressed RLE) as compressed RLE.

    Checked before pycocotools sees it: polygon coordinates are finite and near the image, and
    an RLE is exactly ``height x width`` (its size, and its run lengths non-negative and summing
    to ``height * width``), so a short or overlong RLE cannot decode to memory that is not ours.
    """
    if height * width >= 2**32:
        raise MaskError(f"a {width}x{height} image is too large for COCO RLE (pycocotools counts are 32-bit)")
    if isinstance(segmentation, list):
        polygons = _check_polygons(segmentation, height, width)
        if not polygons:  # an empty mask, made without allocating the image
            return mask_utils.frPyObjects({"size": [height, width], "counts": [height * width]}, height, width)
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        size = segmentation["size"]
        if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(_is_int(v) for v in size):
            raise MaskError(f"RLE size must be [height, width], not {_short(size)}")
        if list(size) != [height, width]:
            raise MaskError(f"RLE size {list(size)} does not match the image size {[height, width]}")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            if not all(_is_int(v) and v >= 0 for v in counts):
                raise MaskError("uncompressed RLE counts must be non-negative whole numbers")
            if sum(counts) != height * width:
                raise MaskError(f"uncompressed RLE counts sum to {sum(counts)}, not {height * width}")
            return mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        if isinstance(counts, (str, bytes)):
            runs = compressed_counts(counts)
            total = int(runs.sum())
            if total != height * width:
                raise MaskError(f"compressed RLE covers {total} pixels, not the image's {height * width}")
            return {"size": [height, width], "counts": counts.encode() if isinstance(counts, str) else counts}
    raise MaskError(f"segmentation is neither polygons nor RLE: {_short(segmentation)}")


def compressed_counts(counts: str | bytes) -> np.ndarray:
    """The run lengths a COCO compressed RLE string stands for (checked: no run is negative).

    The format: each number is a little-endian series of 5-bit groups, one character each
    (character code minus 48; bit 0x20 says another group follows, bit 0x10 of the last group is
    the sign), and from the fourth number on each holds the difference to the number two before.
    """
    try:
        data = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    except UnicodeEncodeError:
        raise MaskError("compressed RLE counts hold characters outside the COCO format") from None
    codes = np.frombuffer(data, np.uint8).astype(np.int64) - 48
    if codes.size == 0:
        return codes
    if codes.min() < 0 or codes.max() > 63:
        raise MaskError("compressed RLE counts hold characters outside the COCO format")
    more = (codes & 0x20) != 0
    if more[-1]:
        raise MaskError("compressed RLE counts end in the middle of a number")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > _MAX_RLE_GROUPS:
        raise MaskError("compressed RLE holds a run longer than any image")
    number = np.repeat(np.arange(ends.size), lengths)
    shift = 5 * (np.arange(codes.size) - starts[number])
    values = np.zeros(ends.size, np.int64)
    np.add.at(values, number, (codes & 0x1F) << shift)
    negative = (codes[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])  # deltas from the fourth number on: one chain per parity
    runs[2::2] = np.cumsum(values[2::2])
    if (runs < 0).any():
        raise MaskError(f"compressed RLE has a negative run ({int(runs.min())})")
    return runs


_MAX_RLE_GROUPS = 8  # 8 groups hold 39 bits plus the sign: more pixels than any image we open


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_finite(v) -> bool:
    """A real number that is not NaN or infinite (a whole number of any size counts)."""
    if _is_int(v):
        return True
    return isinstance(v, (float, np.floating)) and math.isfinite(v)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_polygons(segmentation: list, height: int, width: int) -> list[list[float]]:
    # pycocotools rasterizes at 5x in C ints, with a buffer as long as the outline: a vertex far
    # outside the image would overflow or allocate without bound.
    reach = max(height, width, 1)
    polygons = []
    for i, poly in enumerate(segmentation):
        if not isinstance(poly, (list, tuple)) or not all(_is_finite(v) for v in poly):
            raise MaskError(f"polygon {i} is not a flat list of numbers (all finite)")
        if len(poly) % 2:
            raise MaskError(f"polygon {i} has an odd number of coordinates ({len(poly)})")
        if len(poly) < 6:
            raise MaskError(f"polygon {i} has {len(poly) // 2} points; a polygon needs at least 3")
        if any(not -reach <= v <= 2 * reach for v in poly):
            far = next(v for v in poly if not -reach <= v <= 2 * reach)
            raise MaskError(f"polygon {i} has a coordinate far outside the {width}x{height} image ({far})")
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

_BYTE_SEARCH_MAX = 1 << 21  # pixels: above, mask_bbox reduces rows instead (no 2 MB+ copy)


def mask_bbox(bitmap: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight pixel box ``(x, y, w, h)`` of a bitmap, ``None`` if it is empty.

    The first and last set rows come from a byte search (memchr) instead of a row reduction:
    half the time of ``any(axis=1)`` on a mask being edited (BENCHMARKS.md, write-back: the mask box).
    A whole-image bitmap (an edit's ``SetMask``, 16 MB at 4096²) takes the row reduction instead:
    the byte search's copy costs more there (~5 ms against ~1 ms, #17.3).
    """
    bitmap = np.asarray(bitmap, dtype=bool)
    if bitmap.ndim != 2 or bitmap.size == 0:
        return None
    width = bitmap.shape[1]
    if bitmap.size > _BYTE_SEARCH_MAX:
        rows = np.flatnonzero(bitmap.any(axis=1))
        if not len(rows):
            return None
        y0, y1 = int(rows[0]), int(rows[-1]) + 1
        cols = bitmap[y0:y1].any(axis=0)
        x0, x1 = int(cols.argmax()), width - int(cols[::-1].argmax())
        return x0, y0, x1 - x0, y1 - y0
    data = bitmap.tobytes()
    first = data.find(1)
    if first < 0:
        return None
    y0, y1 = first // width, data.rfind(1) // width + 1
    cols = bitmap[y0:y1].any(axis=0)
    x0, x1 = int(cols.argmax()), width - int(cols[::-1].argmax())
    return x0, y0, x1 - x0, y1 - y0


def clip_box(x0: int, y0: int, w: int, h: int, height: int, width: int) -> tuple[int, int, int, int] | None:
    """The part ``(xs, ys, xe, ye)`` (end exclusive) of the ``w x h`` box at ``(x0, y0)`` inside a
    ``height x width`` image; ``None`` when none of it is."""
    xs, ys = max(x0, 0), max(y0, 0)
    xe, ye = min(x0 + w, width), min(y0 + h, height)
    if xe <= xs or ye <= ys:
        return None
    return xs, ys, xe, ye


def pixel_window(x0: float, y0: float, x1: float, y1: float, height: int, width: int,
                 margin: int = 0) -> tuple[int, int, int, int]:
    """The whole pixels ``(xs, ys, xe, ye)`` (end exclusive) covering the box from ``(x0, y0)`` to
    ``(x1, y1)`` (rounded outwards), widened by ``margin`` pixels on each side and clipped to a
    ``height x width`` image; ``xe <= xs`` or ``ye <= ys`` when none of it is inside."""
    xs, ys = max(math.floor(x0) - margin, 0), max(math.floor(y0) - margin, 0)
    xe, ye = min(math.ceil(x1) + margin, width), min(math.ceil(y1) + margin, height)
    return int(xs), int(ys), int(xe), int(ye)


def union_box(*boxes) -> tuple[int, int, int, int] | None:
    """The smallest ``(x, y, w, h)`` box holding each of ``boxes`` (``(x, y, w, h)`` each; ``None``
    ones left out), ``None`` when there is none."""
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


def paste(x0: int, y0: int, mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A box mask pasted with its top-left at ``(x0, y0)`` (the order of :func:`detection_placed`) into a full-image bitmap, clipped to the image."""
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros((height, width), dtype=bool)
    box = clip_box(x0, y0, mask.shape[1], mask.shape[0], height, width)
    if box is not None:
        xs, ys, xe, ye = box
        out[ys:ye, xs:xe] = mask[ys - y0 : ye - y0, xs - x0 : xe - x0]
    return out


def visible(x0: int, y0: int, mask: np.ndarray, height: int, width: int) -> tuple[int, int, np.ndarray]:
    """``(xs, ys, part)``: the part of a box mask placed at ``(x0, y0)`` that lies inside a
    ``height x width`` image, and where it starts (a view; empty when none of it does)."""
    xs, ys = max(x0, 0), max(y0, 0)
    ye, xe = max(min(y0 + mask.shape[0], height) - y0, ys - y0), max(min(x0 + mask.shape[1], width) - x0, xs - x0)
    return xs, ys, mask[ys - y0:ye, xs - x0:xe]


def crop(bitmap: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """The ``w x h`` box at ``(x0, y0)`` of a full-image bitmap as a box mask (false outside the image):
    the inverse of :func:`paste`."""
    out = np.zeros((h, w), dtype=bool)
    box = clip_box(x0, y0, w, h, *bitmap.shape[:2])
    if box is not None:
        xs, ys, xe, ye = box
        out[ys - y0:ye - y0, xs - x0:xe - x0] = bitmap[ys:ye, xs:xe]
    return out


def filled(mask: np.ndarray | None, w: int, h: int) -> np.ndarray:
    """A label's box mask as a bool array: its own mask, or (mask-less: a box) its ``w x h`` box filled."""
    if mask is None:
        return np.ones((max(0, h), max(0, w)), bool)
    return mask if mask.dtype == bool else np.asarray(mask, dtype=bool)


def placed_iou(a: tuple[int, int, np.ndarray], b: tuple[int, int, np.ndarray]) -> float:
    """IoU of two box masks ``(x0, y0, mask)`` placed in the same image, computed on their boxes' union only."""
    (ax, ay, am), (bx, by, bm) = a, b
    (ah, aw), (bh, bw) = am.shape[:2], bm.shape[:2]
    if min(ax + aw, bx + bw) <= max(ax, bx) or min(ay + ah, by + bh) <= max(ay, by):
        return 0.0
    x0, y0 = min(ax, bx), min(ay, by)
    x1, y1 = max(ax + aw, bx + bw), max(ay + ah, by + bh)
    return bitmap_iou(paste(ax - x0, ay - y0, am, y1 - y0, x1 - x0), paste(bx - x0, by - y0, bm, y1 - y0, x1 - x0))


def clipped_pair_ious(dt: list, gt: list, dt_areas, gt_areas, di: np.ndarray, gi: np.ndarray,
                      crowd: np.ndarray) -> np.ndarray:
    """pycocotools' ``iou`` of the pairs ``(dt[di[p]], gt[gi[p]])`` of box masks ``(x, y, mask)``
    already cut to their image, counted only where the two boxes meet (i / u in double; a crowd
    ground truth's: the intersection over the detection's area); 0 for pairs that share no pixel."""
    dt_clipped, gt_clipped = dt, gt
    geo = lambda items: np.array([(x, y, m.shape[1] if m.ndim > 1 else 0, m.shape[0]) for x, y, m in items],
                                 np.int64).reshape(-1, 4)
    dg, gg = geo(dt_clipped)[di], geo(gt_clipped)[gi]
    x0, y0 = np.maximum(dg[:, 0], gg[:, 0]), np.maximum(dg[:, 1], gg[:, 1])
    x1 = np.minimum(dg[:, 0] + dg[:, 2], gg[:, 0] + gg[:, 2])
    y1 = np.minimum(dg[:, 1] + dg[:, 3], gg[:, 1] + gg[:, 3])
    hit = np.flatnonzero((x1 > x0) & (y1 > y0))
    inter = np.zeros(len(di), np.int64)
    for p, d, g, a0, b0, a1, b1 in zip(hit.tolist(), di[hit].tolist(), gi[hit].tolist(), x0[hit].tolist(),
                                       y0[hit].tolist(), x1[hit].tolist(), y1[hit].tolist()):
        dx, dy, dm = dt_clipped[d]
        gx, gy, gm = gt_clipped[g]
        inter[p] = np.count_nonzero(dm[b0 - dy:b1 - dy, a0 - dx:a1 - dx] & gm[b0 - gy:b1 - gy, a0 - gx:a1 - gx])
    da = np.asarray(dt_areas, float)[di].astype(np.int64)
    union = np.where(crowd[gi], da, da + np.asarray(gt_areas, float)[gi].astype(np.int64) - inter)
    iou = np.zeros(len(di), float)
    pos = inter > 0
    iou[pos] = inter[pos] / union[pos]
    return iou


def bitmap_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bitmaps of the same shape (0 when both are empty)."""
    union = np.count_nonzero(np.logical_or(a, b))
    return float(np.count_nonzero(np.logical_and(a, b))) / union if union else 0.0


def geometry_ious(dt_geoms: list, gt_geoms: list, gt_crowd=None) -> np.ndarray:
    """pycocotools' IoU matrix ``[len(dt), len(gt)]`` between RLEs or ``[x, y, w, h]`` boxes, as
    COCOeval computes it (a crowd ground truth: intersection over the detection's area)."""
    if not dt_geoms or not gt_geoms:
        return np.zeros((len(dt_geoms), len(gt_geoms)))
    crowd = [0] * len(gt_geoms) if gt_crowd is None else [int(c) for c in gt_crowd]
    return np.asarray(mask_utils.iou(dt_geoms, gt_geoms, crowd), dtype=float).reshape(len(dt_geoms), len(gt_geoms))


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

    fo = fiftyone()
    height, width = bitmap.shape
    box = mask_bbox(bitmap)
    if box is None:
        x, y, w, h = empty_box if empty_box is not None else (0, 0, 1, 1)
        # all false, so no bigger than the image: a huge box must not allocate a huge mask
        mw, mh = min(max(1, round_half_up(w)), width), min(max(1, round_half_up(h)), height)
        mask = np.zeros((mh, mw), dtype=bool)
        rel = [x / width, y / height, w / width, h / height]
    else:
        x, y, w, h = box
        mask = np.ascontiguousarray(bitmap[y : y + h, x : x + w], dtype=bool)
        rel = [x / width, y / height, w / width, h / height]
    return fo.Detection(label=label, bounding_box=rel, mask=mask, **attributes)


BOX_LIMIT = 16  # a mask-less box this many times its image's size is a broken label, not a box to fill


def detection_pixel_box(detection, height: int, width: int) -> tuple[int, int, int, int]:
    """The pixel box ``(x, y, w, h)`` a detection's mask is pasted into (unclipped)."""
    box = detection.bounding_box
    if box is None or len(box) != 4 or not all(_is_finite(v) for v in box):
        raise MaskError(f"label box {_short(box)} is not 4 finite numbers")
    bx, by, bw, bh = box
    x0, y0 = round_half_up(bx * width), round_half_up(by * height)
    mask = detection.mask
    if mask is not None:
        mh, mw = mask.shape[:2]
    else:
        mw, mh = max(0, round_half_up((bx + bw) * width) - x0), max(0, round_half_up((by + bh) * height) - y0)
        if mw > BOX_LIMIT * max(width, 1) or mh > BOX_LIMIT * max(height, 1):  # its fill would not fit in memory
            raise MaskError(f"label box {_short(box)} is {BOX_LIMIT}+ times larger than its {width}x{height} image")
    return x0, y0, mw, mh


def detection_placed(detection, height: int, width: int) -> tuple[int, int, np.ndarray]:
    """``(x0, y0, box mask)``: where a detection's mask is pasted, and the mask (a mask-less box fills its box)."""
    x0, y0, w, h = detection_pixel_box(detection, height, width)
    return x0, y0, filled(detection.mask, w, h)


def box_corners(boxes: np.ndarray, heights: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, ...]:
    """``x0, y0, x1, y1`` (int64 arrays) of relative ``[n, 4]`` boxes in images of the given sizes,
    rounded as every placement rounds them (:func:`round_half_up`)."""
    b = np.asarray(boxes, float).reshape(-1, 4)
    x0, y0 = round_half_up(b[:, 0] * widths), round_half_up(b[:, 1] * heights)
    x1, y1 = round_half_up((b[:, 0] + b[:, 2]) * widths), round_half_up((b[:, 1] + b[:, 3]) * heights)
    return x0, y0, x1, y1


def place_masks(boxes: np.ndarray, masks: Sequence, heights: np.ndarray, widths: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """:func:`detection_placed` for many labels at once: ``boxes`` ``[n, 4]`` relative, ``masks``
    box masks (``None`` for a box), ``heights``/``widths`` the image size of each label."""
    x0, y0, x1, y1 = box_corners(boxes, heights, widths)
    return [(x, y, filled(m, xe - x, ye - y))
            for x, y, xe, ye, m in zip(x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist(), masks)]


def placed_boxes(placed: Sequence[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """``[n, 4]`` int ``(x0, y0, w, h)`` in pixels of placed box masks ``(x0, y0, mask)``."""
    return np.array([(x, y, m.shape[1], m.shape[0]) for x, y, m in placed], np.int64).reshape(-1, 4)


def detection_to_bitmap(detection, height: int, width: int) -> np.ndarray:
    """Paste a detection's box mask into a full-image bitmap (a mask-less box fills its box)."""
    return paste(*detection_placed(detection, height, width), height, width)


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
