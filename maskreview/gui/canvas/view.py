"""The image canvas: a QGraphicsView over one image and one overlay layer per label field.

Layers are numpy arrays from :mod:`overlay`, cached per (sample, field, style); the same sample
read again (after an edit) repaints only the boxes of the labels that changed (:mod:`layers`), and
pan and zoom only paint the cached layers. Hit-tests look in a grid index over the visible boxes.
Boxes, labels, the hover highlight and — zoomed in — contours along pixel edges are drawn as
vectors in ``drawForeground``, so they stay crisp at any zoom. Pixels are nearest-neighbour from 1:1 up.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPainterPath, QPen, QPixmap, QRegion, QTransform
from PySide6.QtWidgets import QApplication, QFrame, QGraphicsScene, QGraphicsView

from maskreview.core.masks import round_half_up
from maskreview.core.review import LabelRef, ReviewState
from maskreview.gui.canvas import buffers, overlay as ov
from maskreview.gui.canvas.boxes import draw_boxes
from maskreview.gui.canvas.label_chips import ChipLayout, LabelChips
from maskreview.gui.canvas.layers import BoxIndex, FieldLayer, ImageItem, Mips, boxes_of, pool
from maskreview.gui.canvas.legend import CanvasLegend
from maskreview.gui.canvas.sample import SampleData, placeholder_image

VECTOR_ZOOM = 4.0  # device pixels per image pixel from which contours are drawn as vectors
MAX_ZOOM = 64.0
_LAYER_CACHE = 24
_LAYER_CACHE_BYTES = 1 << 30  # 4096 x 4096 layers are 64 MB each: at most 16 of them are kept
DETAIL_LIMIT = 600  # instances in view up to which boxes and label chips are drawn (dense scenes: zoom in)
# instances in view above which only the framed, selected and hovered labels get chips: in the
# dense 4096x4096 scene at 1:1 (~360 in view) a third of the chips are pushed off their own box by
# the chips in the way, at ~150 a quarter, at ~100 one in seven
CHIP_LIMIT = 150
FOCUS_NOTE = f"Names of the hovered and selected labels only: over {CHIP_LIMIT} labels in view (zoom in for all)"
LABEL_REACH = 250  # logical pixels a box's label chips may run to its right (culling of exposed areas)
ZOOM_STEP = 1.25  # the wheel's and the zoom keys' step
_EXPOSED_RECTS = 8  # a paint's exposed region of more rectangles is culled by its bounding rectangle


def snapped_zoom(level: float) -> float:
    """``level``, or the zoom step (a power of ``ZOOM_STEP``) or whole number within 1e-9 of it:
    zooming in and out by steps multiplies rounding errors in (1.25 * 0.8 = 0.9999999999999999),
    and "1:1" a hair under 1 draws with the smooth, mip-level path and never scrolls in place."""
    for step in (round(level), ZOOM_STEP ** round(np.log(max(level, 1e-12)) / np.log(ZOOM_STEP))):
        if step > 0 and abs(level - step) <= 1e-9 * step:
            return float(step)
    return level


@dataclass(frozen=True)
class OverlayStyle:
    opacity: float = 0.45
    color_mode: str = "class"  # class | field | eval
    fills: bool = True
    contours: bool = True
    boxes: bool = True
    labels: bool = True
    # Inference keeps scores down to 0.05 for AP; a reviewer starts from the confident ones.
    conf_threshold: float = 0.5
    hidden_fields: frozenset = frozenset()
    hidden_classes: frozenset = frozenset()
    only_labels: frozenset | None = None  # label ids an outside filter restricts the view to

    # the fields that are the review state's (one copy, ``ReviewState``); the rest is the canvas's look
    STATE_FIELDS = {"conf_threshold": ("thresholds", "confidence"), "hidden_fields": ("display", "hidden_fields"),
                    "hidden_classes": ("display", "hidden_classes"), "color_mode": ("display", "color_mode"),
                    "only_labels": ("filters", "label_ids")}


def qimage_from_rgb(rgb: np.ndarray) -> QImage:
    """An opaque ``RGB32`` image (what the raster engine draws fastest) of an RGB array."""
    import cv2

    h, w = rgb.shape[:2]
    bgra = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA, dst=buffers.empty((h, w, 4), np.uint8))
    img = QImage(bgra.data, w, h, 4 * w, QImage.Format.Format_RGB32)
    img._keep = bgra  # noqa: SLF001 - the buffer must outlive the QImage
    return img


def qimage_from_layer(layer: np.ndarray) -> QImage:
    """Wrap a premultiplied BGRA layer without copying (the QImage keeps ``layer`` alive)."""
    h, w = layer.shape[:2]
    img = QImage(layer.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
    img._keep = layer  # noqa: SLF001 - the buffer must outlive the QImage
    return img


def cosmetic_pen(rgb, width: float, dpr: float = 1.0, style=Qt.PenStyle.SolidLine) -> QPen:
    """A pen ``width`` logical pixels wide at any zoom (cosmetic widths count device pixels)."""
    pen = QPen(QColor(*rgb), width * dpr, style)
    pen.setCosmetic(True)
    return pen


def segments_path(hs: np.ndarray, vs: np.ndarray) -> QPainterPath:
    """A path of pixel-edge segments: horizontal ``(x0, x1, y)`` rows and vertical ``(y0, y1, x)`` rows."""
    path = QPainterPath()
    for x0, x1, y in hs.tolist():
        path.moveTo(x0, y)
        path.lineTo(x1, y)
    for y0, y1, x in vs.tolist():
        path.moveTo(x, y0)
        path.lineTo(x, y1)
    return path


def edge_path(inst: ov.Instance) -> QPainterPath:
    path = inst.__dict__.get("_qpath")
    if path is None:
        path = segments_path(*inst.edges())
        inst.__dict__["_qpath"] = path
    return path


_PATCH_MAX = 64  # instances replaced in a field's list: above, its visible list is filtered again


@dataclass(eq=False)
class _Visible:
    """A field's visible instances for one sample, list and set of visibility rules."""

    data: SampleData
    source: list
    n: int
    rules: tuple
    insts: list
    index: BoxIndex | None = None
    flags: list | None = None  # per instance of ``source``: shown or not
    prev: tuple | None = None  # (the visible list this one was patched from, positions that differ)
    _summary: tuple | None = None

    def get_index(self, data: SampleData) -> BoxIndex:
        if self.index is None:
            self.index = BoxIndex(boxes_of(self.insts), data.height, data.width)
        return self.index

    def summary(self) -> tuple[bool, tuple[str, ...]]:
        """(any instance of the field a prediction, the visible instances' labels in first-seen
        order), for the legend; patched entries inherit it where the changed labels keep both."""
        if self._summary is None:
            self._summary = (any(ov.is_prediction(i) for i in self.source),
                             tuple(dict.fromkeys(i.label for i in self.insts)))
        return self._summary

    def patched(self, data: SampleData, insts: list, shown) -> _Visible | None:
        """This entry for ``insts``: the same list with a few instances replaced by others of the
        same id (an edit's patch, ``canvas.sample.patched_sample``), each shown (``shown``:
        ``ReviewState.label_visible``) as the one it replaces was. The visible list is patched at
        those positions instead of every label being filtered again; the layer then compares only
        those (``FieldLayer.update(changed=...)``). None when that does not hold (filter again)."""
        old, flags = self.source, self.flags
        if flags is None or len(insts) != self.n or len(old) != self.n:
            return None
        changed = [k for k, (a, b) in enumerate(zip(old, insts)) if a is not b]
        if len(changed) > _PATCH_MAX:
            return None
        summary, positions, out = self._summary, [], list(self.insts)
        for k in changed:
            a, b = old[k], insts[k]
            if a.id != b.id or shown(b.field, b.label, b.score, b.id) != flags[k]:
                return None
            if summary is not None and (a.label != b.label or ov.is_prediction(a) != ov.is_prediction(b)):
                summary = None
            if flags[k]:
                p = sum(flags[:k])  # its place among the shown
                positions.append(p)
                out[p] = b
        if not positions:  # only hidden labels changed: the same visible list, index and layer
            return _Visible(data, insts, len(insts), self.rules, self.insts, self.index, flags, None, summary)
        return _Visible(data, insts, len(insts), self.rules, out, None, flags, (self.insts, positions), summary)


class ImageCanvas(QGraphicsView):
    hovered = Signal(object)  # Instance | None
    cursor_moved = Signal(float, float)  # image coordinates
    view_changed = Signal()
    overlays_changed = Signal()  # visible instances or their colours changed
    instance_framed = Signal(object)
    instance_clicked = Signal(object)
    tool_message = Signal(str)  # e.g. the brush size after [ or ], for the status bar

    def __init__(self, parent=None, state: ReviewState | None = None):
        super().__init__(parent)
        self.state = state if state is not None else ReviewState()
        self.empty_text = ""  # said in the middle while no sample is shown (the window sets it)
        self.setScene(QGraphicsScene(self))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setMouseTracking(True)
        for widget in (self, self.viewport()):  # dropped files go on to the main window
            widget.setAcceptDrops(False)
        self._image_item = ImageItem()
        self.scene().addItem(self._image_item)
        self._layer_items: dict[str, ImageItem] = {}
        self._image_item.overlays = lambda: sorted(self._layer_items.values(), key=lambda it: it.zValue())
        self._layer_cache: OrderedDict = OrderedDict()  # (sample, field, style...) -> (FieldLayer, QImage)
        self._visible: dict[str, _Visible] = {}  # field -> its visible instances and their index
        self._expect_fit = False  # set_sample of a sample about to be fitted: its first mip level is the fit's
        self._by_id_key, self._by_id = None, {}  # label id -> instance, for the field _resolve last asked
        self.layer_images: dict[str, QImage] = {}
        # what the last overlays_changed changed: scene rects (x0, y0, x1, y1) of labels patched
        # in place in the sample on show (an edit, its undo), None: anything (another sample, style...)
        self.changed_rects: list | None = None
        self._shown_sample: tuple | None = None
        self.image_qimage: QImage | None = None
        self.data: SampleData | None = None
        self._look = OverlayStyle()  # opacity, fills, contours, boxes, labels; the rest is read from the state
        self.classes: list[str] = []
        self.field_order: list[str] = []
        self.framed: tuple = ()
        self._frame_index = -1
        self._tool = None
        self._pointer: QPointF | None = None  # the last cursor position (image coordinates): Tab cycles there
        self._pan_from = None
        self._fit_mode = True
        self._click_at: tuple | None = None  # where a left click without a tool began (a drag pans instead)
        self._last_click: tuple[int, int] | None = None
        self._chips = LabelChips()
        self._chip_rects: dict[str, QRectF] = {}  # label_chip_rects, where the view was at _chip_origin
        self._chip_origin = (0.0, 0.0)  # the scene origin's viewport position then
        self.legend = CanvasLegend(self)
        self._exposed: QRegion | None = None  # the viewport region the paint in progress draws
        self._scroll_unpainted = False  # a scroll in place whose exposed bands are not painted yet
        self._note_at = QRect()  # where the last note over the viewport was drawn (viewport coordinates)
        self._observe(self.state)

    def _observe(self, state: ReviewState) -> None:
        for signal in (state.thresholds.events.confidence, state.display.events.all, state.filters.events.label_ids):
            signal.connect(self.render_overlays)
        state.events.selection.connect(self._selection_changed)
        state.events.hover.connect(self._hover_changed)

    # ---------------------------------------------------------------- selection and hover (the state's)
    def _resolve(self, ref: LabelRef | None) -> ov.Instance | None:
        data = self.data
        if ref is None or data is None or ref.sample_id != data.sample_id:
            return None
        insts = data.fields.get(ref.field, [])
        key = (data, ref.field, insts, len(insts))
        if self._by_id_key != key:  # one dict per (sample, field): hover asks per paint
            self._by_id_key, self._by_id = key, {i.id: i for i in insts}
        return self._by_id.get(ref.label_id)

    def _hover_changed(self, new: LabelRef | None, old: LabelRef | None) -> None:
        """Repaint the old and the new highlight only (not the whole viewport), and where only the
        focused labels have chips, the chips on screen and where they go now."""
        for ref in (new, old):
            inst = self._resolve(ref)
            if ref is not None and inst is None:
                self.viewport().update()
                return
            if inst is not None:
                rect = self.mapFromScene(QRectF(inst.x0, inst.y0, inst.w, inst.h)).boundingRect()
                self.viewport().update(rect.adjusted(-4, -4, 4, 4))
        if self.chips_for_focus_only():
            for rect in (*self.label_chip_rects.values(), *(r for _, _, r in self._focus_chips())):
                self.viewport().update(rect.toAlignedRect().adjusted(-1, -1, 1, 1))

    @property
    def selected_instance(self) -> ov.Instance | None:
        """The state's selection, as an instance of the sample on show."""
        return self._resolve(self.state.selection)

    @property
    def hovered_instance(self) -> ov.Instance | None:
        return self._resolve(self.state.hover)

    def _ref(self, inst: ov.Instance | None) -> LabelRef | None:
        if inst is None or self.data is None:
            return None
        return LabelRef(self.data.sample_id, inst.field, inst.id)

    def _selection_changed(self, new, old) -> None:
        inst = self.selected_instance
        if self._tool is not None:
            self._tool.selection_changed(inst)
        self.viewport().update()
        self.instance_clicked.emit(inst)

    # ---------------------------------------------------------------- data and style
    def set_sample(self, data: SampleData | None, keep_view: bool = False) -> None:
        same_image = data is not None and self.data is not None and data.filepath == self.data.filepath
        was = self.state.selection
        self.data = data
        self.state.hover = None
        self.framed, self._frame_index = (), -1
        self.legend.keep_clear(None)
        if data is None:
            self._image_item.set_image(None)
            self.image_qimage = None
        else:
            image = data.image if data.image is not None else placeholder_image(data.height, data.width)
            self._expect_fit = not (keep_view and same_image)
            if not (same_image and self.image_qimage is not None and getattr(self.image_qimage, "_rgb", None) is image):
                self._image_item.set_image(None)  # the image before lets go of its buffer: the new one's (buffers.empty)
                self.image_qimage, self._shown_sample = None, None
                self.image_qimage = qimage_from_rgb(image)
                self.image_qimage._rgb = image  # noqa: SLF001 - the same array again: no conversion
                mips = Mips(self.image_qimage._keep, QImage.Format.Format_RGB32)  # noqa: SLF001
                mips.prefetch(self._first_mip_level(data))  # beside the layers' renders
                self._image_item.set_image(self.image_qimage, mips=mips)
            self.scene().setSceneRect(QRectF(0, 0, data.width, data.height))
        for name in list(self._layer_items):
            if data is None or name not in data.fields:
                self.scene().removeItem(self._layer_items.pop(name))
        self._visible = {n: e for n, e in self._visible.items() if data is not None and n in data.fields}
        self.render_overlays()
        if data is not None and not (keep_view and same_image):
            self.fit()
        self._expect_fit = False
        self.hovered.emit(None)
        if was is not None:  # the same sample redrawn (after an edit): keep its selected label if it still exists
            self.select_instance(self._resolve(was))

    @property
    def style(self) -> OverlayStyle:
        """What the canvas draws: its look, and the state's thresholds, visible fields and classes,
        colour mode and drill-down labels."""
        st = self.state
        return replace(self._look, conf_threshold=st.thresholds.confidence, hidden_fields=st.display.hidden_fields,
                       hidden_classes=st.display.hidden_classes, color_mode=st.display.color_mode,
                       only_labels=st.filters.label_ids)

    def set_style(self, **changes) -> None:
        """Change the look here and the state's part (thresholds, visibility, colours) in the state."""
        for name in [n for n in changes if n in OverlayStyle.STATE_FIELDS]:
            group, attr = OverlayStyle.STATE_FIELDS[name]
            value = changes.pop(name)
            if isinstance(value, (set, list)):
                value = frozenset(value)
            setattr(getattr(self.state, group), attr, value)  # the state's observers redraw
        new = replace(self._look, **changes)
        if new != self._look:
            self._look = new
            self.render_overlays()

    def set_classes(self, classes: list[str]) -> None:
        self.classes = list(classes)
        self._layer_cache.clear()
        self.render_overlays()

    def instance_visible(self, inst: ov.Instance) -> bool:
        return self.state.label_visible(inst.field, inst.label, inst.score, inst.id)

    def visible_instances(self, field_name: str | None = None) -> list[ov.Instance]:
        """The shown instances of a field (all fields: in drawing order); do not change the list."""
        if self.data is None:
            return []
        if field_name:
            return self._visible_of(field_name).insts
        return [i for n in self.fields() for i in self._visible_of(n).insts]

    def _visible_of(self, name: str) -> _Visible:
        """The field's visible instances, kept while the sample, its list and the state's
        visibility rules are the same (``invalidate`` forgets them)."""
        insts = self.data.fields.get(name, [])
        st = self.state
        rules = (st.display.hidden_fields, st.display.hidden_classes, st.filters.label_ids, st.thresholds.confidence)
        entry = self._visible.get(name)
        if entry is not None and entry.data is self.data and entry.source is insts and entry.n == len(insts) \
                and entry.rules == rules:
            return entry
        shown = st.label_visible
        if entry is not None and entry.rules == rules:  # the same list (a field an edit left alone) or patched
            if entry.source is insts and entry.n == len(insts):
                entry.data = self.data
                return entry
            patched = entry.patched(self.data, insts, shown)
            if patched is not None:
                self._visible[name] = patched
                return patched
        flags = [shown(i.field, i.label, i.score, i.id) for i in insts]
        entry = self._visible[name] = _Visible(self.data, insts, len(insts), rules,
                                               [i for i, f in zip(insts, flags) if f], flags=flags)
        return entry

    def field_summary(self, name: str) -> tuple[bool, tuple[str, ...]]:
        """(whether any label of the field is a prediction, the classes of its shown labels in
        drawing order): what the legend lists, kept with the field's visible list."""
        return self._visible_of(name).summary()

    def visible_counts(self) -> dict[str, tuple[int, int]]:
        """``{field: (visible, total)}`` for the current sample."""
        if self.data is None:
            return {}
        return {n: (len(self._visible_of(n).insts), len(insts)) for n, insts in self.data.fields.items()}

    def fields(self) -> list[str]:
        if self.data is None:
            return []
        order = [f for f in self.field_order if f in self.data.fields]
        return order + [f for f in self.data.fields if f not in order]

    def color_of(self, inst: ov.Instance) -> tuple[int, int, int]:
        mode = self.style.color_mode
        if mode == "field":
            names = self.field_order or self.fields()
            i = names.index(inst.field) if inst.field in names else len(names)
            return ov.FIELD_COLORS[i % len(ov.FIELD_COLORS)]
        if mode == "eval":
            return ov.EVAL_COLORS.get(inst.eval or "", ov.NO_EVAL_COLOR)
        if mode == "errors":  # grey outlines; the missed / added pixels are the colours (boundary_errors.py)
            return ov.NO_EVAL_COLOR
        return ov.class_color(inst.label, self.classes)

    # ---------------------------------------------------------------- rendering
    def vector_mode(self) -> bool:
        return self.zoom_level() >= VECTOR_ZOOM

    def _first_mip_level(self, data: SampleData) -> int:
        """The :class:`Mips` level the next paint draws: at the fitted zoom for a sample about to
        be fitted, else at the zoom now."""
        scale = self.zoom_level()
        if getattr(self, "_expect_fit", False):
            vp = self.viewport().size()
            scale = min(vp.width() / max(data.width, 1), vp.height() / max(data.height, 1)) * self.devicePixelRatioF()
        return Mips.level_for(scale, data.height, data.width)

    def render_overlays(self, *_changed) -> None:
        """Show each field's layer: cached per (sample, field, style); a cached layer of the same
        sample whose labels were read again is repainted where they differ only. Fields rendered
        anew render on two threads (numpy and cv2 let go of the GIL)."""
        self.layer_images = {}
        self.changed_rects = None
        data = self.data
        if data is None:
            self._shown_sample = None
            self.viewport().update()
            return
        vector = self.vector_mode()
        s = self.style
        shown, fresh = [], {}
        for z, name in enumerate(self.fields()):
            item = self._layer_items.get(name)
            if item is None:
                item = self._layer_items[name] = ImageItem(composited=True)
                self.scene().addItem(item)
            item.setZValue(1 + z)
            if name in s.hidden_fields or not (s.fills or s.contours):
                item.setVisible(False)
                continue
            key = (data.sample_id, data.filepath, data.height, data.width, name, s, vector, tuple(self.classes))
            shown.append((name, item, key))
            if key in self._layer_cache:  # newest now: what the loop below evicts is never a layer it shows
                self._layer_cache.move_to_end(key)
            else:
                insts = self._visible_of(name).insts
                fresh[key] = (insts, self._colors(insts))
        if fresh:
            self._make_room(fresh, {key for _, _, key in shown}, data.height * data.width * 4)
            level = self._first_mip_level(data)
            make = lambda job: FieldLayer(job[0], job[1], data.height, data.width, fill_alpha=s.opacity,  # noqa: E731
                                          fills=s.fills, contours=s.contours and not vector, lazy=vector, mip_level=level)
            layers = pool().map(make, fresh.values()) if len(fresh) > 1 and not vector else map(make, fresh.values())
            fresh = dict(zip(fresh, layers))
        patched = [] if not fresh and self._shown_sample == (data.sample_id, data.filepath) else None
        for name, item, key in shown:
            visible = self._visible_of(name)
            insts = visible.insts
            cached = self._layer_cache.get(key)
            if cached is None:
                layer = fresh[key]
                cached = self._layer_cache[key] = (layer, qimage_from_layer(layer.array))
                while self._cache_over():
                    self._layer_cache.popitem(last=False)
            else:
                self._layer_cache.move_to_end(key)
                layer = cached[0]
                if layer.insts is not insts:
                    if visible.prev is not None and visible.prev[0] is layer.insts:  # patched at a few places
                        changed = visible.prev[1]
                        colors = list(layer.colors)
                        for k, rgb in zip(changed, self._colors([insts[k] for k in changed])):
                            colors[k] = rgb
                        rects = layer.update(insts, colors, changed=changed)
                    else:
                        rects = layer.update(insts, self._colors(insts))
                        patched = None
                    if patched is not None:
                        patched.extend(rects)
                    for x0, y0, x1, y1 in rects:
                        item.update(QRectF(x0, y0, x1 - x0, y1 - y0))
            visible.index = layer.index  # built over the same list
            self.layer_images[name] = cached[1]
            if item.image is not cached[1] or not item.isVisible():
                patched = None
            if item.image is not cached[1]:
                item.set_image(cached[1], layer)
            item.setVisible(True)
        self._shown_sample = (data.sample_id, data.filepath)
        self.changed_rects = patched if patched and len(self._layer_items) == len(shown) else None
        self._update_transform_mode()
        self.viewport().update()
        self.overlays_changed.emit()

    def _cache_over(self, more: int = 0, more_bytes: int = 0) -> bool:
        """Whether the layer cache, with ``more`` layers of ``more_bytes`` in all, is past its
        budget: its count, or its bytes once it holds more than one sample's fields."""
        cache = self._layer_cache
        return len(cache) + more > _LAYER_CACHE or (len(cache) + more > len(self.fields()) and sum(
            e[0].array.nbytes for e in cache.values()) + more_bytes > _LAYER_CACHE_BYTES)

    def _make_room(self, fresh: dict, keep: set, nbytes: int) -> None:
        """Before ``fresh`` layers (``nbytes`` each) are made: let go of the cached layers the
        cache would drop once they are in (the oldest past its budget, none of ``keep``) and of
        the layers items show that are no longer cached, so that their buffers are the new
        layers' (``buffers.zeros``) instead of fresh memory."""
        cache, n = self._layer_cache, len(fresh)
        while cache and self._cache_over(n, n * nbytes):
            oldest = next((k for k in cache if k not in keep), None)
            if oldest is None:
                break
            del cache[oldest]
        cached = {id(e[0]) for e in cache.values()}
        for item in self._layer_items.values():
            if item.layer is not None and id(item.layer) not in cached:
                item.set_image(None)

    def ensure_layers(self, rect: QRectF) -> None:
        """Render the not yet rendered tiles of lazy layers (zoomed in) in this scene rectangle,
        for those who read ``layer_images`` there (the loupe)."""
        for item in self._layer_items.values():
            if item.layer is not None and item.isVisible():
                item.layer.ensure(rect.left(), rect.top(), rect.right(), rect.bottom())

    def invalidate(self) -> None:
        """Forget cached layers (labels changed in place)."""
        self._layer_cache.clear()
        self._visible.clear()
        self.render_overlays()

    def _update_transform_mode(self) -> None:
        smooth = self.zoom_level() < 1
        for item in (self._image_item, *self._layer_items.values()):
            if item.smooth != smooth:
                item.smooth = smooth
                item.update()

    def set_empty_text(self, text: str) -> None:
        self.empty_text = text
        self.viewport().update()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        data = self.data
        if data is None:
            if self.empty_text:  # a blank canvas says nothing to a new user
                painter.save()
                painter.resetTransform()
                painter.setPen(QColor(90, 90, 90))
                painter.drawText(QRectF(self.viewport().rect()).adjusted(24, 24, -24, -24),
                                 int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self.empty_text)
                painter.restore()
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)  # axis-aligned rects, contour runs
        s = self.style
        in_view = self.instances_in_view()
        detail = in_view <= DETAIL_LIMIT
        all_chips = in_view <= CHIP_LIMIT
        drawn = (s.contours and self.vector_mode()) or (detail and (s.boxes or s.labels))  # what needs each label
        rects = self._exposed_scene_rects(rect)
        vis = self.instances_in(rects, labels=s.labels and all_chips) if drawn else []
        colors = self._colors(vis)
        if s.contours and self.vector_mode():
            for inst, rgb in zip(vis, colors):  # ground truth solid, predictions dashed (overlay.is_prediction)
                predicted = ov.is_prediction(inst)
                painter.setPen(self._pen(rgb, 2.0, Qt.PenStyle.DashLine if predicted else Qt.PenStyle.SolidLine))
                painter.drawPath(edge_path(inst))
        if s.boxes and detail:
            vp = self.viewport()
            draw_boxes(painter, vis, colors, self.viewportTransform(), vp.width(), vp.height(),
                       lambda rgb, dashed: self._pen(rgb, 1.0, Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine))
        for inst in self.framed:
            if inst is not None:
                self._draw_highlight(painter, inst, QColor(255, 255, 255))
        if self.hovered_instance is not None:
            self._draw_highlight(painter, self.hovered_instance, QColor(255, 255, 0))
        if self.selected_instance is not None:
            self._draw_highlight(painter, self.selected_instance, QColor(0, 255, 255))
        if self._tool is not None:
            self._tool.paint(painter, rect)
        painter.restore()
        if s.labels and all_chips:
            if vis:
                self._draw_labels(painter, vis, colors, self._paints_whole_viewport(rect))
        elif s.labels and detail:
            self._draw_focus_labels(painter)
            self._draw_note(painter, FOCUS_NOTE)
        if not detail and (s.boxes or s.labels):
            self._draw_note(painter, f"{in_view:,} labels in view: boxes and names show at {DETAIL_LIMIT:,} or fewer (zoom in)")
        if data.error:
            painter.save()
            painter.resetTransform()
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "Cannot show this image\n" + data.error)
            painter.restore()

    def paintEvent(self, event) -> None:
        self._exposed = event.region()  # drawForeground is given its bounding rect only
        self._scroll_unpainted = False
        try:
            super().paintEvent(event)
        finally:
            self._exposed = None

    def _exposed_scene_rects(self, rect: QRectF) -> list[QRectF]:
        """The scene rectangles the paint in progress draws: the exposed region's (a pan scrolled
        in place exposes an edge band, or two: their bounding rect would be the whole viewport)."""
        region = self._exposed
        if region is None or region.rectCount() > _EXPOSED_RECTS:
            return [rect]
        return [self.mapToScene(r).boundingRect() for r in region]

    def _paints_whole_viewport(self, rect: QRectF) -> bool:
        if self._exposed is not None:
            return QRegion(self.viewport().rect()).subtracted(self._exposed).isEmpty()
        return rect.adjusted(-1, -1, 1, 1).contains(self.mapToScene(self.viewport().rect()).boundingRect())

    def instances_in_view(self) -> int:
        """How many visible instances meet the viewport (a dense scene zoomed out: boxes and
        label chips wait until at most ``DETAIL_LIMIT`` do; fills and contours are always drawn)."""
        if self.data is None:
            return 0
        r = self.mapToScene(self.viewport().rect()).boundingRect()
        return sum(len(self._visible_of(n).get_index(self.data).intersecting(r.left(), r.top(), r.right() + 1, r.bottom() + 1))
                   for n in self.fields())

    def _draw_note(self, painter: QPainter, text: str) -> None:
        painter.save()
        painter.resetTransform()
        metrics = painter.fontMetrics()
        box = metrics.boundingRect(text).adjusted(-6, -3, 6, 3)
        box.moveBottomLeft(self.viewport().rect().bottomLeft() + QPoint(8, -8))
        self._note_at = box
        painter.fillRect(box, QColor(0, 0, 0, 170))
        painter.setPen(QColor(230, 230, 230))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def instances_in(self, rects: QRectF | list[QRectF], labels: bool = False) -> list[ov.Instance]:
        """The visible instances whose box (or label chips, with ``labels``) meets the scene
        rectangle ``rects`` (or any of a list of them), in drawing order."""
        reach_x = reach_y = 0.0
        if labels:  # chips sit above a box's top-left corner and run to its right
            scale = max(self.transform().m11(), 1e-9)  # logical pixels per image pixel
            reach_x = LABEL_REACH / scale
            reach_y = ChipLayout.REACH * (self._chips.height or 40) / scale + 1  # chips stack upwards
        areas = [(r.left() - reach_x - 1, r.top() - 1, r.right() + 1, r.bottom() + reach_y + 1)  # a box's right and bottom lines are drawn on the pixels after it
                 for r in ([rects] if isinstance(rects, QRectF) else rects)]
        out = []
        for name in self.fields():
            entry = self._visible_of(name)
            index = entry.get_index(self.data)
            if len(areas) == 1:
                ks = index.intersecting(*areas[0])
            else:
                ks = np.unique(np.concatenate([index.intersecting(*a) for a in areas]))  # sorted: drawing order
            out.extend(entry.insts[k] for k in ks)
        return out

    def _colors(self, insts: list[ov.Instance]) -> list[tuple[int, int, int]]:
        """``color_of`` for many instances, one look-up per (label, field, eval)."""
        memo: dict = {}
        out = []
        for inst in insts:
            key = (inst.label, inst.field, inst.eval)
            rgb = memo.get(key)
            if rgb is None:
                rgb = memo[key] = self.color_of(inst)
            out.append(rgb)
        return out

    def _draw_highlight(self, painter: QPainter, inst: ov.Instance, color: QColor) -> None:
        path = edge_path(inst)
        painter.setPen(self._pen((0, 0, 0), 4.0))
        painter.drawPath(path)
        painter.setPen(self._pen((color.red(), color.green(), color.blue()), 2.0))
        painter.drawPath(path)

    def _draw_labels(self, painter: QPainter, vis: list[ov.Instance], colors: list, whole: bool) -> None:
        """The chips of ``vis``, laid out afresh when the whole viewport is painted; a partial
        paint (a hover, a patch after an edit or a model run's write, the band a pan exposes)
        draws each chip where the last whole paint put it (moved with the view since), so that the
        chips it repaints agree with those it leaves on screen, and places a chip it has not drawn
        before clear of those: panning, chips stay where they are (a whole layout may stack two
        overlapping ones the other way round, the one drawn first in its place)."""
        painter.save()
        painter.resetTransform()
        chips = self._chips_set_up()
        t = self.viewportTransform()  # scene -> viewport is scale + translate
        sx, dx, sy, dy = t.m11(), t.dx(), t.m22(), t.dy()
        top = chips.height
        layout, rects, placed, seeded = ChipLayout(top), {}, self._chip_rects, False
        ox, oy = round(dx - self._chip_origin[0]), round(dy - self._chip_origin[1])  # scrolled since the last whole paint
        made = chips.made  # a new object when the chips' font or pixel ratio change
        for inst, rgb in zip(vis, colors):
            pixmap, width = self._chip_of(inst, rgb, chips, made)
            x, y = round_half_up(inst.x0 * sx + dx), round_half_up(inst.y0 * sy + dy) - top  # not round(): half to even moves by a pixel as the view pans
            if whole:
                y = layout.place(x, y, width)
                rects[inst.id] = QRectF(x, y, width, top)
            elif inst.id in placed:
                y = round(placed[inst.id].top()) + oy
            else:  # new since the last whole paint (a label a run or an edit just wrote, or one a pan brought in)
                if not seeded:  # clear of the chips on screen and about to be (no new one lands further out)
                    seeded, vp = True, self.viewport().rect()
                    near = QRectF(-2 * LABEL_REACH - ox, -(ChipLayout.REACH + 2) * top - oy, vp.width() + 4 * LABEL_REACH,
                                  vp.height() + 2 * (ChipLayout.REACH + 2) * top)
                    for r in placed.values():
                        if near.intersects(r):
                            layout.occupy(round(r.left()) + ox, round(r.top()) + oy, round(r.width()))
                y = layout.place(x, y, width)
                placed[inst.id] = QRectF(x - ox, y - oy, width, top)
            painter.drawPixmap(x, y, pixmap)
        if whole:
            self._chip_rects, self._chip_origin = rects, (dx, dy)
        painter.restore()

    def _chips_set_up(self) -> LabelChips:
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        return self._chips.setup(font, self.devicePixelRatioF())

    @staticmethod
    def _chip_of(inst: ov.Instance, rgb, chips: LabelChips, made) -> tuple:
        """``inst``'s chip pixmap and its logical width: name, score and tags composed once, kept on
        the instance while its colour and text and the chips' font stay the same."""
        memo, key = inst.__dict__.get("_chip"), (rgb, inst.label, inst.score, inst.tags)
        if memo is None or memo[0] is not made or memo[1] != key:
            pixmap = chips.label(inst.label, inst.score, inst.tags, rgb)
            memo = inst.__dict__["_chip"] = (made, key, pixmap, chips.width(pixmap))
        return memo[2], memo[3]

    def chips_for_focus_only(self, in_view: int | None = None) -> bool:
        """More than ``CHIP_LIMIT`` labels in view (``in_view``, or counted now) and at most
        ``DETAIL_LIMIT``: only the framed, selected and hovered labels get chips."""
        if self.data is None or not self.style.labels:
            return False
        return CHIP_LIMIT < (self.instances_in_view() if in_view is None else in_view) <= DETAIL_LIMIT

    def _focus_chips(self) -> list[tuple[ov.Instance, QPixmap, QRectF]]:
        """The chips of the framed, selected and hovered labels (in that order: the hovered one's
        on top) and where they go in the viewport, laid out afresh: each label's place does not
        depend on those after it, so a hover change moves none of the others' chips."""
        focus = {id(i): i for i in (*self.framed, self.selected_instance, self.hovered_instance) if i is not None}
        if not focus:
            return []
        chips = self._chips_set_up()
        t, top = self.viewportTransform(), chips.height
        layout, out = ChipLayout(top), []
        for inst, rgb in zip(focus.values(), self._colors(list(focus.values()))):
            pixmap, width = self._chip_of(inst, rgb, chips, chips.made)
            x, y = round_half_up(inst.x0 * t.m11() + t.dx()), round_half_up(inst.y0 * t.m22() + t.dy()) - top
            out.append((inst, pixmap, QRectF(x, layout.place(x, y, width), width, top)))
        return out

    def _draw_focus_labels(self, painter: QPainter) -> None:
        """The chips of the framed, selected and hovered labels only (a view of more than
        ``CHIP_LIMIT`` labels); they become what ``label_chip_rects`` reports."""
        painter.save()
        painter.resetTransform()
        rects = {}
        for inst, pixmap, rect in self._focus_chips():
            painter.drawPixmap(rect.topLeft(), pixmap)
            rects[inst.id] = rect
        t = self.viewportTransform()
        self._chip_rects, self._chip_origin = rects, (t.dx(), t.dy())
        painter.restore()

    @property
    def label_chip_rects(self) -> dict[str, QRectF]:
        """The viewport rectangles of the chips the last whole paint laid out (and those placed
        since), by label id: kept as they were then, with where the view was (a pan scrolled in
        place moves them all at once, not one by one)."""
        t = self.viewportTransform()
        ox, oy = round(t.dx() - self._chip_origin[0]), round(t.dy() - self._chip_origin[1])
        if not (ox or oy):
            return self._chip_rects
        return {k: r.translated(ox, oy) for k, r in self._chip_rects.items()}

    def _pen(self, rgb, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
        return cosmetic_pen(rgb, width, self.devicePixelRatioF(), style)

    @staticmethod
    def _box(inst: ov.Instance) -> QRectF:
        return QRectF(inst.x0, inst.y0, inst.w, inst.h)

    # ---------------------------------------------------------------- zoom and pan
    def zoom_level(self) -> float:
        """Device pixels per image pixel."""
        return self.transform().m11() * self.devicePixelRatioF()

    def zoom_by(self, factor: float) -> None:
        target = snapped_zoom(min(max(self.zoom_level() * factor, self._min_zoom()), MAX_ZOOM))
        if abs(target / max(self.zoom_level(), 1e-9) - 1) > 1e-6:
            was_vector = self.vector_mode()
            scale = target / self.devicePixelRatioF()
            self.setTransform(QTransform.fromScale(scale, scale))  # set, not multiplied: no rounding drift
            self._fit_mode = False
            self._after_zoom(was_vector)

    def set_zoom(self, level: float) -> None:
        self.zoom_by(level / max(self.zoom_level(), 1e-9))

    def actual_size(self) -> None:
        """1:1 — one image pixel on one device pixel."""
        self.set_zoom(1.0)

    def fit(self) -> None:
        if self.data is None:
            return
        was_vector = self.vector_mode()
        self.fitInView(QRectF(0, 0, self.data.width, self.data.height), Qt.AspectRatioMode.KeepAspectRatio)
        self._fit_mode = True
        self._after_zoom(was_vector)

    def _min_zoom(self) -> float:
        if self.data is None:
            return 0.05
        vp = self.viewport().size()
        fit = min(vp.width() / max(self.data.width, 1), vp.height() / max(self.data.height, 1))
        return min(fit * self.devicePixelRatioF(), 1.0) * 0.5

    def _after_zoom(self, was_vector: bool) -> None:
        if was_vector != self.vector_mode():
            self.render_overlays()
        else:
            self._update_transform_mode()
        self.view_changed.emit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y()
        if delta:
            self.zoom_by(1.25 ** (delta / 120.0))
            self._hover_at(self.mapToScene(event.position().toPoint()))  # at an edge the image moves under the pointer
        event.accept()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        """At 1:1 and whole-number zooms a pan moves the pixels already painted and repaints the
        edge bands it exposes. There every device pixel's centre lies inside one image pixel, so
        the nearest-neighbour pixels a band draws do not depend on where the band starts (at 1.5625x
        pixel centres fall on image pixel edges: thousands of pixels came out otherwise). Zoomed
        out (smooth scaling), at other zooms, with a note or text drawn over the viewport, or with
        a tool (it may draw what follows the pointer), the whole viewport is painted again."""
        data, zoom = self.data, self.zoom_level()
        in_place = data is not None and not data.error and self._tool is None and zoom >= 1 and zoom == int(zoom)
        in_view = self.instances_in_view() if in_place else 0
        focus_only = in_place and self.chips_for_focus_only(in_view)
        detail = in_place and in_view <= DETAIL_LIMIT
        if detail:
            if self._scroll_unpainted:  # paint what the last scroll exposed first: Qt moves no pixels over a pending repaint
                QApplication.sendEvent(self.window(), QEvent(QEvent.Type.UpdateRequest))
            self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        super().scrollContentsBy(dx, dy)
        self._scroll_unpainted = detail
        if detail:
            self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
            self.legend.stay()  # the viewport's scroll moved its children too
            in_view = self.instances_in_view()
            if in_view > DETAIL_LIMIT or self.chips_for_focus_only(in_view) != focus_only:
                self.viewport().update()  # boxes or chips give way to a note, or all chips come back: all of it again
            elif focus_only:  # the note stays where it is: drawn again there, and where the scroll moved it
                self.viewport().update(self._note_at)
                self.viewport().update(self._note_at.translated(dx, dy))
        self.view_changed.emit()

    # ---------------------------------------------------------------- instances
    def instance_at(self, x: float, y: float) -> ov.Instance | None:
        """The top-most visible instance under image point ``(x, y)`` (the grid index's
        candidates there, the exact mask deciding)."""
        for name in reversed(self.fields()):
            entry = self._visible_of(name)
            for k in entry.get_index(self.data).candidates(x, y)[::-1]:
                inst = entry.insts[k]
                if inst.contains(x, y):
                    return inst
        return None

    def match_of(self, inst: ov.Instance) -> tuple[ov.Instance | None, float | None]:
        """The instance matched to ``inst`` (evaluation id if any, else best mask IoU in another field)."""
        others = [i for n in self.fields() if n != inst.field for i in self.visible_instances(n)]
        if inst.match_id:
            for other in others:
                if other.id == inst.match_id:
                    return other, inst.eval_iou if inst.eval_iou is not None else ov.mask_iou(inst, other)
        match, iou = ov.best_match(inst, others)
        return (match, iou) if match is not None else (None, None)

    def select_instance(self, inst: ov.Instance | None) -> None:
        """Select ``inst`` (in the state: what Delete, relabel, tags and promote act on)."""
        ref = self._ref(inst)
        if ref == self.state.selection:
            self._selection_changed(ref, ref)  # said again: a tool or panel may have moved on
        else:
            self.state.selection = ref

    def click_select(self, x: float, y: float) -> ov.Instance | None:
        """A click: the top-most instance there; clicking the same pixel again selects the next one
        under it (overlapping instances), as Tab does."""
        at = (int(np.floor(x)), int(np.floor(y)))
        again, self._last_click = at == self._last_click, at
        hits = self.instances_at(x, y)
        if again and self.selected_instance in hits:
            self._pointer = QPointF(x, y)
            return self.cycle_selection(1)
        self.select_instance(hits[0] if hits else None)
        return self.selected_instance

    def select_label(self, field_name: str, label_id: str) -> ov.Instance | None:
        """Select the instance of this label (by id) in the current sample; None if it is gone."""
        insts = self.data.fields.get(field_name, []) if self.data is not None else []
        inst = next((i for i in insts if i.id == label_id), None)
        self.select_instance(inst)
        return inst

    def instances_at(self, x: float, y: float) -> list[ov.Instance]:
        """The visible instances under image point ``(x, y)``, top-most first."""
        out = []
        for name in reversed(self.fields()):
            entry = self._visible_of(name)
            out.extend(inst for inst in (entry.insts[k] for k in entry.get_index(self.data).candidates(x, y)[::-1])
                       if inst.contains(x, y))
        return out

    def cycle_selection(self, step: int = 1) -> ov.Instance | None:
        """Select the next (``step=-1``: previous) of the overlapping instances under the cursor."""
        hits = self.instances_at(self._pointer.x(), self._pointer.y()) if self._pointer is not None else []
        if not hits:
            return None
        at = hits.index(self.selected_instance) if self.selected_instance in hits else -1 if step > 0 else 0
        self.select_instance(hits[(at + step) % len(hits)])
        return self.selected_instance

    def step_instance(self, step: int = 1) -> ov.Instance | None:
        """Frame the next (or previous) visible instance with its match drawn beside it."""
        insts = self.visible_instances(self.fields()[0]) if self.fields() else []
        insts = insts or self.visible_instances()
        if not insts:
            return None
        self._frame_index = (self._frame_index + step) % len(insts)
        inst = insts[self._frame_index]
        match, _ = self.match_of(inst)
        self.framed = (inst, match)
        rect = self._box(inst)
        if match is not None:
            rect = rect.united(self._box(match))
        self.frame_rect(rect)
        self.instance_framed.emit(inst)
        return inst

    FRAME_MAX_ZOOM = 8  # closer than this, a small label's neighbours are out of view; zoom on by hand

    def frame_rect(self, rect: QRectF) -> None:
        """Zoom to an image rectangle with its surroundings: the rectangle takes at most ~40% of
        the view (at least 64 image pixels shown), at most ``FRAME_MAX_ZOOM``x."""
        side = max(rect.width(), rect.height())
        margin = (max(side * 2.5, side + 8, 64) - side) / 2
        was_vector = self.vector_mode()
        self.fitInView(rect.adjusted(-margin, -margin, margin, margin), Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom_level() > self.FRAME_MAX_ZOOM:
            self.set_zoom(self.FRAME_MAX_ZOOM)
            self.centerOn(rect.center())
        self._fit_mode = False
        self._after_zoom(was_vector)
        chips = ChipLayout.REACH * (self._chips.height or 16)  # its label chips stack above it
        self.legend.keep_clear(self.mapFromScene(rect).boundingRect().adjusted(-4, -chips, 4, 4))
        self.viewport().update()

    # ---------------------------------------------------------------- tools
    @property
    def tool(self):
        return self._tool

    def set_tool(self, tool) -> None:
        if self._tool is not None:
            self._tool.deactivate()
        self._tool = tool
        if tool is None:
            self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
            self.viewport().unsetCursor()
        else:
            self.setDragMode(QGraphicsView.DragMode.NoDrag)
            tool.activate(self)
            self.viewport().setCursor(tool.cursor)
        self.viewport().update()

    def event(self, event) -> bool:
        """Keys for the canvas come before window shortcuts and focus moves: Tab cycles the
        overlapping instances under the cursor, and the active tool takes the keys it wants
        now (a polygon in progress takes Enter, Esc and Backspace; the brush takes [ and ])."""
        kind = event.type()
        if kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and self._wants_key(event):
            event.accept()
            if kind == QEvent.Type.KeyPress:
                if event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
                    self.cycle_selection(-1 if event.key() == Qt.Key.Key_Backtab else 1)
                else:
                    self._tool.key_press(event)
            return True
        return super().event(event)

    def _wants_key(self, event) -> bool:
        if event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
            return self._pointer is not None and bool(self.instances_at(self._pointer.x(), self._pointer.y()))
        return self._tool is not None and self._tool.wants_key(event)

    def mouseDoubleClickEvent(self, event) -> None:
        if self._tool is not None and self._tool.double_click(self.mapToScene(event.position().toPoint()), event):
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def mousePressEvent(self, event) -> None:
        self._pointer = self.mapToScene(event.position().toPoint())
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = event.position()
            event.accept()
            return
        if self._tool is not None and self._tool.press(self.mapToScene(event.position().toPoint()), event):
            event.accept()
            return
        self._click_at = (event.position().x(), event.position().y()) if event.button() == Qt.MouseButton.LeftButton \
            and self._tool is None else None
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        pos = self._pointer = self.mapToScene(event.position().toPoint())
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(d.y()))
        self.cursor_moved.emit(pos.x(), pos.y())
        self._hover_at(pos)
        if self._tool is not None and self._tool.move(pos, event):
            event.accept()
            return
        super().mouseMoveEvent(event)

    def _hover_at(self, pos) -> None:
        """The label under scene point ``pos`` becomes the hovered one."""
        inst = self.instance_at(pos.x(), pos.y())
        if inst is not self.hovered_instance:
            self.state.hover = self._ref(inst)
            self.hovered.emit(inst)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = None
            return
        if self._tool is not None and self._tool.release(self.mapToScene(event.position().toPoint()), event):
            event.accept()
            return
        start, self._click_at = self._click_at, None
        if start is not None and abs(event.position().x() - start[0]) + abs(event.position().y() - start[1]) < 4:
            pos = self.mapToScene(event.position().toPoint())  # a click, not a drag: select without the select tool
            self.click_select(pos.x(), pos.y())
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event) -> None:
        if self.state.hover is not None:
            self.state.hover = None
            self.hovered.emit(None)
        super().leaveEvent(event)
