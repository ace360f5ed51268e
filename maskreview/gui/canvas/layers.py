"""Overlay layers for dense scenes (issue 17, point 3): redrawn only where labels changed, and a
grid index over the instances' boxes for hit-tests and culling.

A :class:`FieldLayer` is one field's rendered pixels (``overlay.render_layer``) together with the
instances and colours they show. Given the instances of the same sample read again (after an
edit, its undo, a model run), :meth:`FieldLayer.update` finds the labels that differ and repaints
only their old and new boxes, with every instance that touches them, clipped: the pixels equal a
full re-render (``tests/test_canvas_dense.py``). :class:`BoxIndex` buckets instances by the grid
cells their boxes cover, so the instance under a point is found among a handful of candidates
(the exact mask decides). :class:`ImageItem` draws a QImage straight from its buffer, so a layer
patched in place shows without a pixmap copy; zoomed out to half size or less it draws a
:class:`Mips` level instead (the pixels a scaled draw samples, patched where the layer was), so
a frame scales about as many pixels as it shows, not the whole 4096 x 4096 layer.
"""

from __future__ import annotations

import itertools
import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QImage, QPainter, QTransform
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from maskreview.core.masks import clip_box
from maskreview.gui.canvas import buffers, overlay as ov

GRID = 64  # image pixels per index cell
TILE = 256  # image pixels per side of a lazily rendered tile (zoomed in: only what is in view)
FULL_REDRAW_SHARE = 0.25  # dirty boxes covering more of the image than this: render it all again
MIP_MIN = 1024  # images smaller than this on both sides are drawn without mip levels

_SERIALS = itertools.count()
_POOL: list = []  # one pool of two threads: the layers of a sample and the mip levels render beside each other


def pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(2, thread_name_prefix="maskreview-layers"))
    return _POOL[0]


class Mips:
    """Half, quarter... size versions of a BGRA array (a layer, or the image as ``RGB32``), made
    when first drawn (or :meth:`prefetch`) and patched in the rectangles :meth:`invalidate` names.

    Level ``k`` holds every ``2**k``-th pixel of each ``2**k`` block's middle (``base[c::2**k,
    c::2**k]``, ``c = 2**(k - 1)``): the pixels a scaled-down draw of the whole array samples, so the
    ground truth's hatch and the predictions' dashes look as they did drawn from full size (an
    average would blur them into a plain tint); a patch is the same slice of the patched part."""

    def __init__(self, base: np.ndarray, fmt: QImage.Format):
        self.base, self.fmt = base, fmt
        self._levels: dict[int, tuple[np.ndarray, QImage]] = {}
        self._dirty: dict[int, list] = {}  # level -> rectangles of the base to copy again
        self._pending: dict[int, Future] = {}  # level -> its making on the pool (prefetch)
        self._lock = threading.Lock()
        self.version = 0  # counts invalidations: a composite of levels is made again when it changes
        self.serial = next(_SERIALS)  # never reused (an id() may be, once this is gone)
        self._log: list[tuple[int, list | None]] = []  # (version, the rectangles it changed; None: all), the last few

    @staticmethod
    def level_for(scale: float, height: int, width: int) -> int:
        """The level to draw at ``scale`` device pixels per image pixel: the smallest one still
        at least as large as what is shown (0: the array itself)."""
        if scale >= 0.5 or max(height, width) < MIP_MIN or scale <= 0:
            return 0
        finest = int(math.log2(max(height, width))) - 2  # levels stop at a few pixels across
        return min(max(int(math.log2(1.0 / scale) + 1e-9), 0), finest)  # scale < 0.5: log2 >= 1

    def prefetch(self, *levels: int) -> None:
        """Make these levels on the pool (what the next paint, or the next zoom step, will want)."""
        if max(self.base.shape[:2]) < MIP_MIN:  # drawn from full size at every zoom
            return
        for level in levels:
            if level > 0 and level not in self._levels and level not in self._pending \
                    and min(self.base.shape[:2]) >> level > 0:
                self._pending[level] = pool().submit(self._make, level, True)

    def _wait(self) -> None:
        """Wait for the pool's making of every level."""
        for level in list(self._pending):
            self._pending.pop(level).result()

    def invalidate(self, rects: list | None = None) -> None:
        """The base changed in these rectangles (``x0, y0, x1, y1``; None: everywhere)."""
        self.version += 1
        self._log = self._log[-15:] + [(self.version, None if rects is None else list(rects))]
        if rects is None:
            self._wait()
            self._levels.clear()
            self._dirty.clear()
            return
        for k in {*self._levels, *self._pending}:  # a level made on the pool meanwhile is patched when drawn
            self._dirty.setdefault(k, []).extend(rects)

    def changed_since(self, version: int) -> list | None:
        """The base rectangles changed after ``version`` (empty: none); None when not known (all)."""
        if version == self.version:
            return []
        later = [rects for v, rects in self._log if v > version]
        if len(later) != self.version - version or any(r is None for r in later):
            return None
        return [r for rects in later for r in rects]

    def qimage(self, level: int) -> QImage:
        pending = self._pending.get(level)
        if pending is not None and pending.done():
            del self._pending[level]
            pending.result()
        self._make(level)  # not waited for when still queued: made here (the pool's then finds it made)
        return self._levels[level][1]

    def _pixels(self) -> np.ndarray:
        """The base as one ``uint32`` per pixel where it can be (a strided copy 2-3x faster)."""
        b = self.base
        if b.ndim == 3 and b.shape[2] == 4 and b.dtype == np.uint8 and b.flags.c_contiguous:
            return b.view(np.uint32).reshape(b.shape[:2])
        return b

    def _make(self, level: int, ahead: bool = False) -> None:
        """Make ``level``, or patch it where the base changed; ``ahead`` (on the pool): only make a
        missing one (the GUI thread patches the levels it draws), keeping the patches waiting,
        since the base may change while it is copied."""
        with self._lock:
            step, c = 1 << level, 1 << (level - 1)
            have = self._levels.get(level)
            if have is not None and ahead:
                return
            if have is None:
                src = self._pixels()[c::step, c::step]
                arr = buffers.empty(src.shape, src.dtype)
                np.copyto(arr, src)
                if arr.ndim == 2:
                    arr = arr.view(np.uint8).reshape(*arr.shape, 4)
                img = QImage(arr.data, arr.shape[1], arr.shape[0], arr.strides[0], self.fmt)
                img._keep = arr  # noqa: SLF001 - the buffer must outlive the QImage
                self._levels[level] = (arr, img)
                if not ahead:
                    self._dirty.pop(level, None)
                return
            arr = have[0]
            for x0, y0, x1, y1 in self._dirty.pop(level, []):  # the level pixels whose source lies inside
                lx0, ly0 = max(-(-(int(x0) - c) // step), 0), max(-(-(int(y0) - c) // step), 0)
                lx1, ly1 = min(-(-(int(x1) - c) // step), arr.shape[1]), min(-(-(int(y1) - c) // step), arr.shape[0])
                if lx1 > lx0 and ly1 > ly0:
                    arr[ly0:ly1, lx0:lx1] = self.base[c + ly0 * step:c + ly1 * step:step, c + lx0 * step:c + lx1 * step:step]


def boxes_of(insts: list[ov.Instance]) -> np.ndarray:
    """``(n, 4)`` int64 ``x0, y0, x1, y1`` of each instance's (unclipped) box."""
    if not insts:
        return np.zeros((0, 4), np.int64)
    arr = np.array([(i.x0, i.y0, i.w, i.h) for i in insts], np.int64)
    arr[:, 2:] += arr[:, :2]
    return arr


class BoxIndex:
    """Instance indices bucketed by the ``GRID``-pixel cells their boxes cover; built once per
    (sample, field, visibility). ``candidates(x, y)`` are in paint order (bottom first)."""

    def __init__(self, boxes: np.ndarray, height: int, width: int, cell: int = GRID):
        self.boxes, self.cell = boxes, cell
        self.gw, self.gh = max(1, -(-width // cell)), max(1, -(-height // cell))
        n = len(boxes)
        if n == 0:
            self.bounds, self.order = np.zeros(self.gw * self.gh + 1, np.int64), np.zeros(0, np.int64)
            return
        c0 = np.clip(boxes[:, :2] // cell, 0, [self.gw - 1, self.gh - 1])
        c1 = np.clip((boxes[:, 2:] - 1) // cell, 0, [self.gw - 1, self.gh - 1])
        nx = np.maximum(c1[:, 0] - c0[:, 0] + 1, 0)
        ny = np.maximum(c1[:, 1] - c0[:, 1] + 1, 0)
        off_image = (boxes[:, 2] <= 0) | (boxes[:, 3] <= 0) | (boxes[:, 0] >= width) | (boxes[:, 1] >= height)
        count = np.where(off_image, 0, nx * ny)
        owner = np.repeat(np.arange(n), count)
        k = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
        cx = c0[owner, 0] + k % nx[owner]
        cy = c0[owner, 1] + k // nx[owner]
        cells = cy * self.gw + cx
        order = np.lexsort((owner, cells))
        self.order = owner[order]
        self.bounds = np.concatenate([[0], np.cumsum(np.bincount(cells, minlength=self.gw * self.gh))])

    def candidates(self, x: float, y: float) -> np.ndarray:
        cx, cy = int(x // self.cell), int(y // self.cell)
        if not (0 <= cx < self.gw and 0 <= cy < self.gh):  # off the image: boxes may stick out
            b = self.boxes
            return np.flatnonzero((b[:, 0] <= x) & (b[:, 2] > x) & (b[:, 1] <= y) & (b[:, 3] > y))
        c = cy * self.gw + cx
        return self.order[self.bounds[c]:self.bounds[c + 1]]

    def intersecting(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """Indices (paint order) of the boxes that overlap the rectangle ``[x0, x1) x [y0, y1)``."""
        b = self.boxes
        return np.flatnonzero((b[:, 0] < x1) & (b[:, 2] > x0) & (b[:, 1] < y1) & (b[:, 3] > y0))


def same_pixels(a: ov.Instance, b: ov.Instance) -> bool:
    """Whether ``a`` and ``b`` put the same pixels into a layer (given the same colour)."""
    if a is b:
        return True
    if (a.x0, a.y0, a.w, a.h) != (b.x0, b.y0, b.w, b.h) or (a.score is None) != (b.score is None):
        return False
    ma, mb = a.mask, b.mask
    if ma is mb:
        return True
    if ma is None or mb is None:
        return False
    return ma.shape == mb.shape and ma.tobytes() == mb.tobytes()


class FieldLayer:
    """One field's layer: ``array`` (premultiplied BGRA, ``overlay.render_layer``) showing
    ``insts`` in ``colors``, with their boxes and a :class:`BoxIndex`.

    A ``lazy`` layer (zoomed in, where only a small part is in view) renders ``TILE``-pixel tiles
    when they are first drawn (:meth:`ensure`, called by :class:`ImageItem`)."""

    def __init__(self, insts: list[ov.Instance], colors: list, height: int, width: int,
                 fill_alpha: float, fills: bool, contours: bool, lazy: bool = False, mip_level: int = 0):
        self.height, self.width = height, width
        self.options = dict(fill_alpha=fill_alpha, fills=fills, contours=contours)
        self.insts, self.colors = insts, list(colors)  # the canvas's own list: ``is`` tells it is unchanged
        self._reindex()
        self.lazy = lazy
        self.array = buffers.zeros((height, width, 4), np.uint8)
        if lazy:
            self._rendered = np.zeros((-(-height // TILE), -(-width // TILE)), bool)
        else:
            ov.render_layer(self.insts, self.colors, height, width, out=self.array, **self.options)
        self.repainted: list = [(0, 0, width, height)]  # what the last render or update repainted
        self.mips = None if lazy else Mips(self.array, QImage.Format.Format_ARGB32_Premultiplied)
        if self.mips is not None and mip_level:  # the level the first paint draws, made here (on the pool)
            self.mips._make(mip_level)  # noqa: SLF001

    def ensure(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        """Render the tiles of a lazy layer that meet the rectangle and are not rendered yet."""
        if not self.lazy:
            return False
        th, tw = self._rendered.shape
        r0, r1 = max(int(y0 // TILE), 0), min(int(y1 // TILE) + 1, th)
        c0, c1 = max(int(x0 // TILE), 0), min(int(x1 // TILE) + 1, tw)
        todo = [(r, c) for r in range(r0, r1) for c in range(c0, c1) if not self._rendered[r, c]]
        for r, c in todo:
            self._render((c * TILE, r * TILE, min((c + 1) * TILE, self.width), min((r + 1) * TILE, self.height)))
            self._rendered[r, c] = True
        return bool(todo)

    def _render(self, rect: tuple[int, int, int, int]) -> None:
        hit = self.index.intersecting(*rect)
        ov.render_layer([self.insts[k] for k in hit], [self.colors[k] for k in hit], self.height, self.width,
                        out=self.array, clip=rect, **self.options)

    def _reindex(self) -> None:
        self.boxes = boxes_of(self.insts)
        self.index = BoxIndex(self.boxes, self.height, self.width)

    def update(self, insts: list[ov.Instance], colors: list, changed: list[int] | None = None) -> list[tuple[int, int, int, int]]:
        """Show ``insts`` in ``colors`` instead; repaint only the boxes of the labels that changed
        (old and new place). ``changed``: the only positions where ``insts`` may differ from the
        labels shown (the same ids in the same order elsewhere; the canvas knows it from the
        edit's patch), so that only those are compared. Returns the rectangles repainted
        (``x0, y0, x1, y1``)."""
        colors = list(colors)
        dirty = self._dirty(insts, colors, changed)
        self.insts, self.colors = insts, colors
        if dirty is None or sum((r[2] - r[0]) * (r[3] - r[1]) for r in dirty) > FULL_REDRAW_SHARE * self.height * self.width:
            self.array[:] = 0
            self._reindex()
            if self.lazy:  # drawn again tile by tile as they come into view
                self._rendered[:] = False
            else:
                ov.render_layer(insts, colors, self.height, self.width, out=self.array, **self.options)
                self.mips.invalidate()
            self.repainted = [(0, 0, self.width, self.height)]
            return self.repainted
        if dirty:
            if self._moved is None:
                self._reindex()
            else:  # the same labels in the same order: only the changed rows of the boxes
                self.boxes = self.boxes.copy()
                for k in self._moved:
                    b = insts[k]
                    self.boxes[k] = (b.x0, b.y0, b.x0 + b.w, b.y0 + b.h)
                self.index = BoxIndex(self.boxes, self.height, self.width)
            for rect in dirty:
                self._render(rect)
            if self.mips is not None:
                self.mips.invalidate(dirty)
        self.repainted = dirty
        return dirty

    def _dirty(self, insts: list[ov.Instance], colors: list, only: list[int] | None = None) -> list | None:
        """The clipped boxes to repaint, merged where they overlap; None when the labels that
        stayed are in another order (everything is repainted then). ``only``: see ``update``."""
        old, old_colors = self.insts, self.colors
        changed: list[tuple[ov.Instance | None, ov.Instance | None]] = []
        self._moved = None  # indices whose box may have changed, when the ids stay in order
        if only is not None and len(old) == len(insts) and all(old[k].id == insts[k].id for k in only):
            pairs = ((k, old[k], insts[k], old_colors[k], colors[k]) for k in only)
        elif len(old) == len(insts) and all(a.id == b.id for a, b in zip(old, insts)):
            pairs = ((k, *t) for k, t in enumerate(zip(old, insts, old_colors, colors)))
        else:
            pairs = None
        if pairs is not None:
            self._moved = []
            for k, a, b, ca, cb in pairs:  # same_pixels, inlined
                if a is b and ca == cb:
                    continue
                ma, mb = a.mask, b.mask
                if ca != cb or a.x0 != b.x0 or a.y0 != b.y0 or a.w != b.w or a.h != b.h \
                        or (a.score is None) != (b.score is None) or (ma is not mb and (
                            ma is None or mb is None or ma.shape != mb.shape or ma.tobytes() != mb.tobytes())):
                    changed.append((a, b))
                    self._moved.append(k)
        else:
            before = {i.id: (i, c) for i, c in zip(old, old_colors)}
            after = {i.id: (i, c) for i, c in zip(insts, colors)}
            moved = set()
            for key in before.keys() | after.keys():
                a, b = before.get(key, (None, None)), after.get(key, (None, None))
                if a[0] is None or b[0] is None or a[1] != b[1] or not same_pixels(a[0], b[0]):
                    changed.append((a[0], b[0]))
                    moved.add(key)
            if [i.id for i in old if i.id not in moved] != [i.id for i in insts if i.id not in moved]:
                return None
        rects = []
        for pair in changed:
            for inst in pair:
                box = None if inst is None else clip_box(inst.x0, inst.y0, inst.w, inst.h, self.height, self.width)
                if box is not None:
                    rects.append(tuple(int(v) for v in box))
        return merge_rects(rects)


def merge_rects(rects: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Union overlapping rectangles until none overlap (a few per edit)."""
    out = list(rects)
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    out[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return out


def _level_image(item: ImageItem, level: int) -> QImage:
    """What ``item`` draws at mip ``level``: its image itself at 0."""
    return item.image if level == 0 else item.mips.qimage(level)


def _blend(key: tuple, image: QImage, tops: list[QImage]) -> tuple[tuple, QImage]:
    """``image`` with ``tops`` drawn over it, at full size (on the pool; QPainter on a QImage is
    thread-safe): ``(key, composite)``."""
    out = image.copy()
    painter = QPainter(out)
    for top in tops:
        painter.drawImage(0, 0, top)
    painter.end()
    return key, out


def _whole_pixel_blit(painter: QPainter) -> bool:
    """Whether the painter maps image pixels onto device pixels one to one (1:1, moved by whole
    pixels). There the smooth hint draws the same pixels as nearest-neighbour, and Qt 6 spreads
    such a draw over its own threads: the GUI thread blends a 1600 x 1000 view of a 4096² layer in
    ~0.03 instead of ~0.9 ms (the process's CPU about the same)."""
    t = painter.deviceTransform()
    return t.type().value <= QTransform.TransformationType.TxTranslate.value and t.dx() == int(t.dx()) and t.dy() == int(t.dy())


class ImageItem(QGraphicsItem):
    """Draws a QImage from its own buffer (no QPixmap copy): the image or a layer patched in place.

    Zoomed out to a mip level, the image's item draws one opaque composite of its level and the
    levels of the layers above it (``overlays``), made once per level and per change of any of
    them; those layers' items (``composited``) then draw nothing: a frame scales one image, not three.
    From 1:1 up (below vector zoom) the same holds at full size: one composite, patched after edits."""

    def __init__(self, image: QImage | None = None, composited: bool = False):
        super().__init__()
        self.image, self.smooth = image, False
        self.layer: FieldLayer | None = None  # a lazy layer renders the tiles about to be drawn
        self.mips: Mips | None = None  # smaller levels to draw zoomed out
        self.composited = composited  # a layer whose mip levels the image's item draws
        self.overlays = None  # the image's item: () -> the items above it, bottom first
        self._composites: dict[int, tuple] = {}  # level -> (what it was made of, QImage)
        self._full_job: Future | None = None  # the full-size composite being made on the pool
        self._full_seen: tuple | None = None  # the serials of the image and layers painted last without one
        self.in_composite = False  # a layer's item: the image's item drew it this paint (1:1 and up)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def _tops(self) -> list[ImageItem]:
        """The visible layers over the image that its composites blend in, bottom first."""
        size = self.image.size()
        return [it for it in self.overlays() if it.isVisible() and it.mips is not None and it.image is not None
                and it.image.size() == size]

    def _key(self, tops: list[ImageItem]) -> tuple:
        """What a composite of the image and ``tops`` is made of: their mip levels' serials and versions."""
        return self.mips.serial, self.mips.version, tuple((it.mips.serial, it.mips.version) for it in tops)

    def _composite(self, level: int) -> QImage:
        """The image's ``level`` (0: full size) with the visible layers above it blended in, made
        once and made again only where a layer (or the image) changed since."""
        tops = self._tops()
        key = self._key(tops)
        made = self._composites.get(level)
        if made is not None and made[0] == key:
            return made[1]
        rects = self._changed(made[0], key, tops) if made is not None else None
        if rects is not None:  # the same levels, changed in a few places (an edit): made again there only
            image = made[1]
            step, c = 1 << level, (1 << level) >> 1
            painter = QPainter(image)
            for x0, y0, x1, y1 in rects:  # the level pixels sampled from inside, and a pixel more
                lx0, ly0 = max((int(x0) - c) // step, 0), max((int(y0) - c) // step, 0)
                lx1, ly1 = min((int(x1) - c) // step + 2, image.width()), min((int(y1) - c) // step + 2, image.height())
                if lx1 <= lx0 or ly1 <= ly0:
                    continue
                area = QRect(lx0, ly0, lx1 - lx0, ly1 - ly0)
                painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
                painter.drawImage(area, _level_image(self, level), area)
                painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
                for it in tops:
                    painter.drawImage(area, _level_image(it, level), area)
            painter.end()
            self._composites[level] = (key, image)
            return image
        image = _level_image(self, level).copy()
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)  # whole-pixel blends: threaded
        for it in tops:
            painter.drawImage(0, 0, _level_image(it, level))
        painter.end()
        self._composites[level] = (key, image)
        return image

    def _full_composite(self) -> QImage | None:
        """From 1:1 up: the image with every layer above it blended in at full size (None while a
        layer renders lazily, zoomed far in: blended per frame in the part in view). A frame then
        draws one image instead of three (1:1: ~3 ms less of a 1600 x 1000 view of a 4096² scene;
        zoomed: one scaled draw instead of a blend of the exposed part and its scaled draw).

        New layers (a sample shown, a style changed) are drawn as they are; painted again (a pan,
        a zoom, a hover), the pool makes their composite (a 4096² one is ~25 ms: not on a frame),
        drawn from then on. An edit's patch of a made one is applied in place, on the paint that
        shows it."""
        over = [it for it in self.overlays() if it.isVisible() and it.composited and it.image is not None]
        if not over or self.mips is None or any(it.mips is None for it in over):
            return None
        tops = self._tops()
        key = self._key(tops)
        made = self._composites.get(0)
        if made is None and self._full_job is not None and self._full_job.done():
            made, self._full_job = self._full_job.result(), None
        if made is not None and (made[0] == key or self._changed(made[0], key, tops) is not None):
            self._composites[0] = made
            return self._composite(0)
        self._composites.pop(0, None)  # (none, or made of other layers than those shown now)
        if self._full_job is None and self._full_seen == key[::2]:  # painted before: worth making (a pan, a zoom)
            self._full_job = pool().submit(_blend, key, self.image, [it.image for it in tops])
        self._full_seen = key[::2]
        return None

    def _draw_zoomed_composite(self, painter: QPainter, exposed: QRectF) -> bool:
        """Zoomed in past 1:1, the exposed part of the image with the layers above it blended in
        at full size, then scaled once (nearest-neighbour: blending and sampling commute): one
        scaled draw instead of three (~2 ms each for a 1600 x 1000 view at 1.25x); the full-size
        blends are whole-pixel blits Qt spreads over its threads. False: nothing to blend."""
        size = self.image.size()
        tops = [it for it in self.overlays() if it.isVisible() and it.composited and it.image is not None]
        if not tops:
            return False
        r = exposed.toAlignedRect().intersected(QRect(0, 0, size.width(), size.height()))
        if r.isEmpty():
            return True
        for it in tops:
            if it.layer is not None:
                it.layer.ensure(r.left(), r.top(), r.right(), r.bottom())
        part = QImage(r.size(), self.image.format())
        blend = QPainter(part)
        blend.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        blend.drawImage(0, 0, self.image, r.x(), r.y(), r.width(), r.height())
        blend.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
        blend.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)  # 1:1 whole pixels: threaded
        for it in tops:
            blend.drawImage(0, 0, it.image, r.x(), r.y(), r.width(), r.height())
        blend.end()
        painter.drawImage(r.x(), r.y(), part)
        return True

    def _changed(self, old: tuple, key: tuple, tops: list) -> list | None:
        """The base rectangles where the composite made from ``old`` differs from one made of
        ``key`` (the same image and layers, newer versions); None: make it anew."""
        if old[0] != key[0] or [s for s, _ in old[2]] != [s for s, _ in key[2]]:
            return None
        rects = []
        for mips, version in [(self.mips, old[1]), *((it.mips, v) for it, (_, v) in zip(tops, old[2]))]:
            changed = mips.changed_since(version)
            if changed is None:
                return None
            rects.extend(changed)
        return merge_rects(rects)

    def set_image(self, image: QImage | None, layer: FieldLayer | None = None, mips: Mips | None = None) -> None:
        self.prepareGeometryChange()
        self.image, self.layer = image, layer
        self.mips = mips if mips is not None else layer.mips if layer is not None else None
        self._composites.clear()
        self._full_job = None  # one still running is of the image before: dropped when done
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.image.width(), self.image.height()) if self.image is not None else QRectF()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if self.image is None:
            return
        if self.layer is not None:
            r = option.exposedRect
            self.layer.ensure(r.left(), r.top(), r.right(), r.bottom())
        blit = _whole_pixel_blit(painter)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth or blit)
        if not self.smooth:  # 1:1 and zoomed in: image and layers drawn as one
            if self.composited and (self.in_composite or not blit):  # in the image's composite or part
                return
            full = self._full_composite() if self.overlays is not None else None
            if self.overlays is not None:
                for it in self.overlays():  # painted after this item, in the same paint
                    it.in_composite = full is not None
            if full is not None:
                r = option.exposedRect.toAlignedRect().intersected(full.rect())
                painter.drawImage(r, full, r)
                return
            if not blit and self.overlays is not None and self._draw_zoomed_composite(painter, option.exposedRect):
                return
        if self.mips is not None and self.smooth:
            scale = abs(painter.worldTransform().m11()) * painter.device().devicePixelRatioF()
            level = Mips.level_for(scale, self.image.height(), self.image.width())
            self.mips.prefetch(level - 1, level + 1)  # the next zoom step's levels, made before it is taken
            if level:
                if self.composited:  # drawn into the image's composite of this level
                    return
                small = self._composite(level) if self.overlays is not None else self.mips.qimage(level)
                painter.save()
                painter.setClipRect(self.boundingRect(), Qt.ClipOperation.IntersectClip)  # the last pixels reach past it
                painter.scale(1 << level, 1 << level)
                painter.drawImage(0, 0, small)
                painter.restore()
                return
        painter.drawImage(0, 0, self.image)
