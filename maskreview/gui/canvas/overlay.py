"""Overlay layers as numpy arrays: one premultiplied BGRA layer per label field.

No Qt here, so the renderer can be timed on its own (``bench/bench_gui.py``). Each instance's
box mask is written only into its box region (boolean indexing on a view), and contours are the
mask's boundary pixels (mask minus its erosion, cv2). The canvas wraps a layer in a QImage of
format ``ARGB32_Premultiplied`` (B, G, R, A bytes on little-endian machines) without copying.

Zoomed in, the canvas draws contours as vector paths along pixel *edges* instead
(:func:`edge_segments`), so a boundary sits exactly between the pixels it separates.
"""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass, field

import numpy as np

from maskreview.core.masks import clip_box, placed_iou

EVAL_COLORS = {"tp": (46, 204, 64), "fp": (255, 65, 54), "fn": (0, 116, 217)}
NO_EVAL_COLOR = (170, 170, 170)
FIELD_COLORS = [(46, 204, 113), (255, 133, 27), (0, 170, 255), (240, 18, 190), (255, 220, 0), (57, 204, 204)]
COLOR_MODES = ("class", "field", "eval", "errors")  # errors: pairs' missed / added pixels (boundary_errors.py)


def class_palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` well separated saturated colours (golden-ratio hues)."""
    out = []
    for i in range(n):
        h = (0.07 + i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0 if i % 2 == 0 else 0.85)
        out.append((int(r * 255), int(g * 255), int(b * 255)))
    return out


_PALETTE = class_palette(64)


def class_color(label: str, classes: list[str] | tuple[str, ...] = ()) -> tuple[int, int, int]:
    """A stable colour per class: its index among ``classes``, else a hash of the name."""
    try:
        i = list(classes).index(label)
    except ValueError:
        i = len(classes) + int(hashlib.md5(label.encode()).hexdigest()[:6], 16)
    return _PALETTE[i % len(_PALETTE)]


@dataclass(eq=False)
class Instance:
    """What the GUI needs of one ``fo.Detection`` (the detection document stays the data)."""

    field: str
    id: str
    label: str
    score: float | None
    x0: int  # pixel box the mask is pasted into (core.masks convention), unclipped
    y0: int
    w: int
    h: int
    mask: np.ndarray | None  # box-relative bool mask; None for a box-only detection
    eval: str | None = None  # "tp" / "fp" / "fn" from the per-label evaluation attribute
    eval_iou: float | None = None
    match_id: str | None = None
    tags: tuple[str, ...] = ()  # the label's own tags (review tags such as "fix"), drawn as chips
    _area: int | None = field(default=None, repr=False)
    _edges: object = field(default=None, repr=False)

    @property
    def area(self) -> int:
        if self._area is None:
            self._area = int(self.mask.sum()) if self.mask is not None else self.w * self.h
        return self._area

    def full_mask(self) -> np.ndarray:
        return self.mask if self.mask is not None else np.ones((self.h, self.w), bool)

    def contains(self, x: float, y: float) -> bool:
        ix, iy = int(np.floor(x)) - self.x0, int(np.floor(y)) - self.y0
        if not (0 <= ix < self.w and 0 <= iy < self.h):
            return False
        return self.mask is None or bool(self.mask[iy, ix])

    def edges(self):
        """Cached :func:`edge_segments` of this instance's mask, in image coordinates."""
        if self._edges is None:
            hs, vs = edge_segments(self.full_mask())
            hs = hs + np.array([self.x0, self.x0, self.y0])
            vs = vs + np.array([self.y0, self.y0, self.x0])
            self._edges = (hs, vs)
        return self._edges


def _pixel_boxes(dets: list, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """``masks.detection_pixel_box`` of each detection, for many at once: the same numbers (the
    same float operations, vectorised); any box that is not four plain numbers, or too large,
    goes through ``detection_pixel_box`` itself, which says what is wrong with it."""
    from maskreview.core.masks import BOX_LIMIT, detection_pixel_box, round_half_up

    boxes = [d.bounding_box for d in dets]
    plain = all(type(b) is list and len(b) == 4 and all(
        type(v) is float or (type(v) is int and -(1 << 52) < v < (1 << 52)) for v in b) for b in boxes)
    arr = np.array(boxes, np.float64).reshape(-1, 4) if plain else None
    if arr is None or not np.isfinite(arr).all():
        return [detection_pixel_box(d, height, width) for d in dets]
    x0, y0 = round_half_up(arr[:, 0] * width), round_half_up(arr[:, 1] * height)
    bw = np.maximum(0, round_half_up((arr[:, 0] + arr[:, 2]) * width) - x0)
    bh = np.maximum(0, round_half_up((arr[:, 1] + arr[:, 3]) * height) - y0)
    out = []
    for d, x, y, w, h in zip(dets, x0.tolist(), y0.tolist(), bw.tolist(), bh.tolist()):
        mask = d.mask
        if mask is not None:
            h, w = mask.shape[:2]
        elif w > BOX_LIMIT * max(width, 1) or h > BOX_LIMIT * max(height, 1):
            return [detection_pixel_box(d, height, width) for d in dets]  # raises for this one
        out.append((x, y, w, h))
    return out


def instances_from_detections(field_name: str, detections, height: int, width: int,
                              eval_key: str | None = None) -> list[Instance]:
    dets = list(detections.detections) if detections is not None else []
    out = []
    for det, (x0, y0, w, h) in zip(dets, _pixel_boxes(dets, height, width)):
        mask = det.mask
        if mask is not None and not (type(mask) is np.ndarray and mask.dtype == bool):
            mask = np.asarray(mask, dtype=bool)
        doc = getattr(det, "doc", None)  # a raw document (gui.queries.RawDetection): read it directly
        get = doc.get if type(doc) is dict else (lambda k, _d=det: _d.get_field(k) if _d.has_field(k) else None)
        ev = iou = match = None
        if eval_key:
            ev, iou, match = get(eval_key), get(f"{eval_key}_iou"), get(f"{eval_key}_id")
        tags = get("tags")
        if type(doc) is dict:
            ident, label, score = str(doc["_id"]), doc.get("label"), doc.get("confidence")
        else:
            ident, label, score = det.id, det.label, det.confidence
        out.append(Instance(field_name, str(ident), str(label), score, x0, y0, w, h, mask,
                            ev if isinstance(ev, str) else None, iou, match, tuple(tags or ())))
    return out


def is_prediction(inst: Instance) -> bool:
    """A model's label (it has a score); ground truth has none. The two are drawn differently:
    ground truth with a solid outline over a hatched fill, predictions with a dashed outline over
    a translucent solid fill (and dashed boxes), in every colour mode."""
    return inst.score is not None


DASH = 4  # pixels on, then off, along a prediction's outline
HATCH = 6  # period of the ground truth's diagonal hatch (2 pixels of it drawn)


def render_layer(instances: list[Instance], colors: list[tuple[int, int, int]], height: int, width: int,
                 fill_alpha: float = 0.45, contours: bool = True, fills: bool = True,
                 out: np.ndarray | None = None, clip: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A ``height x width x 4`` premultiplied BGRA uint8 layer of translucent fills and contours.

    Later instances paint over earlier ones. Contours are opaque, so they stay crisp whatever
    the fill opacity. Ground truth: a 2-pixel solid contour over a diagonal hatch; predictions:
    a dashed 1-pixel contour over a solid fill (:func:`is_prediction`).

    ``clip`` ``(x0, y0, x1, y1)`` repaints only that rectangle of ``out`` (cleared first), with
    exactly the pixels a full render puts there: each instance's contour is still found on its
    whole box, only the writes are clipped (a dirty region after an edit, ``layers.py``).

    One pass on the calling thread: a layer split in row bands on two threads (b68ddb3) cost
    10-25 % more CPU and, with the per-instance Python work holding the GIL, more wall time too
    on the 2-core machine (BENCHMARKS.md, #17 overlay, helper ov).
    """
    layer = out if out is not None else np.zeros((height, width, 4), np.uint8)
    flat = layer.view(np.uint32).reshape(height, width)  # one BGRA pixel = one uint32 store
    a = min(max(float(fill_alpha), 0.0), 1.0)
    if clip is not None:
        cx0, cy0 = max(int(clip[0]), 0), max(int(clip[1]), 0)
        cx1, cy1 = min(int(clip[2]), width), min(int(clip[3]), height)
        if cx0 >= cx1 or cy0 >= cy1:
            return layer
        flat[cy0:cy1, cx0:cx1] = 0
        clip = (cx0, cy0, cx1, cy1)
    _paint(instances, colors, flat, height, width, a, fills, contours, clip)
    return layer


def _paint(instances: list[Instance], colors: list, flat: np.ndarray, height: int, width: int, a: float,
           fills: bool, contours: bool, clip: tuple[int, int, int, int] | None) -> None:
    """Paint ``instances`` into ``flat`` (already cleared), writing only inside ``clip``."""
    import cv2

    if clip is not None:
        cx0, cy0, cx1, cy1 = clip
    thick = np.ones((5, 5), np.uint8)
    packed: dict = {}  # colour -> (fill pixel, contour pixel)
    for inst, rgb in zip(instances, colors):
        box = clip_box(inst.x0, inst.y0, inst.w, inst.h, height, width)
        if box is None:
            continue
        xs, ys, xe, ye = box
        keep = None  # inside the clip: every store is made
        if clip is not None:
            if xs >= cx1 or xe <= cx0 or ys >= cy1 or ye <= cy0:
                continue
            if xs < cx0 or ys < cy0 or xe > cx1 or ye > cy1:  # writes only inside the clip: ``keep`` masks them
                keep = np.zeros((ye - ys, xe - xs), bool)
                keep[max(cy0 - ys, 0):cy1 - ys, max(cx0 - xs, 0):cx1 - xs] = True
        region = flat[ys:ye, xs:xe]
        if inst.mask is None:
            m = np.ones((ye - ys, xe - xs), bool)
        else:
            m = inst.mask[ys - inst.y0:ye - inst.y0, xs - inst.x0:xe - inst.x0]
        pixels = packed.get(rgb)
        if pixels is None:
            r, g, b = rgb
            pixels = packed[rgb] = (_pack(b * a, g * a, r * a, 255 * a), _pack(b, g, r, 255))
        predicted = is_prediction(inst)
        if fills and a > 0:
            fill = m if predicted else m & _hatch(ys, ye, xs, xe)
            np.copyto(region, pixels[0], where=fill if keep is None else fill & keep)
        if contours:
            mu = m.view(np.uint8)
            if predicted:
                outlines, _ = cv2.findContours(np.ascontiguousarray(mu), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
                for outline in outlines:  # dashes along the outline, whatever its direction
                    pts = outline.reshape(-1, 2)[_dash_on(len(outline))]
                    if keep is not None:
                        pts = pts[keep[pts[:, 1], pts[:, 0]]]
                    region[pts[:, 1], pts[:, 0]] = pixels[1]
            else:
                inner = cv2.erode(mu, thick, borderType=cv2.BORDER_CONSTANT, borderValue=0)
                edge = mu > inner
                np.copyto(region, pixels[1], where=edge if keep is None else edge & keep)


_PATTERNS: dict = {}


def _hatch(ys: int, ye: int, xs: int, xe: int) -> np.ndarray:
    """The ground truth's diagonal hatch over rows ``ys:ye``, columns ``xs:xe`` (image coordinates):
    a view into one cached pattern, since ``(x + y) % HATCH`` only depends on ``(xs + ys) % HATCH``."""
    h, w = ye - ys, xe - xs
    tile = _PATTERNS.get("hatch")
    if tile is None or tile.shape[0] < h + HATCH or tile.shape[1] < w:
        rows, cols = max(h + HATCH, 1024), max(w, 1024)
        if tile is not None:
            rows, cols = max(rows, tile.shape[0]), max(cols, tile.shape[1])
        yy, xx = np.ogrid[:rows, :cols]
        tile = _PATTERNS["hatch"] = (xx + yy) % HATCH < 2
    s = (xs + ys) % HATCH
    return tile[s:s + h, :w]


def _dash_on(n: int) -> np.ndarray:
    """Which of an outline's first ``n`` points are drawn: ``DASH`` on, ``DASH`` off."""
    on = _PATTERNS.get("dash")
    if on is None or len(on) < n:
        on = _PATTERNS["dash"] = (np.arange(max(n, 8192)) // DASH) % 2 == 0
    return on[:n]


def _pack(b: float, g: float, r: float, a: float) -> np.uint32:
    return np.array([int(b), int(g), int(r), int(a)], np.uint8).view(np.uint32)[0]


def edge_segments(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask boundary as runs along pixel edges, in mask coordinates (pixel ``(x, y)`` spans
    ``[x, x+1] x [y, y+1]``).

    Returns ``(h, v)``: ``h`` rows ``(x_start, x_end, y)`` are horizontal edges on the line
    ``y``; ``v`` rows ``(y_start, y_end, x)`` are vertical edges on the line ``x``.
    """
    p = np.pad(np.asarray(mask, bool), 1)
    hdiff = p[1:, 1:-1] != p[:-1, 1:-1]  # (h+1, w): edge between rows y-1 and y
    vdiff = p[1:-1, 1:] != p[1:-1, :-1]  # (h, w+1): edge between columns x-1 and x
    return _runs(hdiff), _runs(vdiff.T)


def _runs(edges: np.ndarray) -> np.ndarray:
    """Runs of True along each row of ``edges`` as ``(start, end, row)`` int rows."""
    rows, cols = edges.shape
    padded = np.zeros((rows, cols + 2), np.int8)
    padded[:, 1:-1] = edges
    d = np.diff(padded.reshape(-1))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    width = cols + 2
    row = starts // width
    return np.stack([starts % width, ends % width, row], axis=1).astype(np.int32) if starts.size else np.zeros((0, 3), np.int32)


def mask_iou(a: Instance, b: Instance) -> float:
    """IoU of two instances' masks (``masks.placed_iou``)."""
    return placed_iou((a.x0, a.y0, a.full_mask()), (b.x0, b.y0, b.full_mask()))


def best_match(inst: Instance, others: list[Instance]) -> tuple[Instance | None, float]:
    """The instance of ``others`` (same class first) with the highest mask IoU, and that IoU."""
    best, best_iou = None, 0.0
    for other in others:
        iou = mask_iou(inst, other)
        if other.label != inst.label:
            iou *= 0.999  # same-class matches win ties
        if iou > best_iou:
            best, best_iou = other, iou
    if best is not None and best.label != inst.label:
        best_iou = mask_iou(inst, best)
    return best, best_iou
