"""Edit tools for the canvas: select (Tab cycles overlaps), brush/eraser, polygon, outline.

Each tool is a :class:`~maskreview.gui.canvas.tools.CanvasTool` that turns image-coordinate
mouse events into core ops (:mod:`maskreview.core.editing.ops`) and hands them to ``apply`` (usually
``EditController.apply``, which writes them and pushes an undo step). Masks are painted at
image resolution on a full-image bitmap of the selected instance only, so overlapping
instances stay separate.

Install (main window)::

    tools = make_edit_tools(self.edits.apply, field_for_new=lambda: GT_FIELD,
                            label_for_new=lambda: self.class_picker.current())
    self.canvas.set_tool(tools["brush"])           # keys: [ and ] change the brush size

Keys (the canvas gives them to the active tool before window shortcuts, see ``wants_key``):
Tab / Shift+Tab cycle the overlapping instances under the cursor (the canvas's own); the
polygon tool takes Enter (add), Esc (cancel) and Backspace (last vertex) while a polygon is in
progress; brush and eraser take ``[`` and ``]`` (size, shown as the cursor circle and in the
status bar). ``TOOL_KEYS`` lists them for the shortcut sheet.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainterPath, QPen, QPolygonF

from maskreview.core import masks as mk
from maskreview.core.editing.ops import AddInstance, LabelRef, Op, SetMask
from maskreview.core.fields import GT_FIELD
from maskreview.gui.canvas.tools import CanvasTool, SelectTool

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
ENTER, ESC, BACKSPACE = (Qt.Key.Key_Return, Qt.Key.Key_Enter), Qt.Key.Key_Escape, Qt.Key.Key_Backspace
SMALLER, LARGER = Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight

# (group, what, keys) rows for the shortcut sheet
TOOL_KEYS = [
    ("Canvas", "Cycle overlapping instances under the cursor", "Tab, Shift+Tab"),
    ("Select tool", "Select an instance; click again: the one below", "Click"),
    ("Brush / eraser", "Smaller / larger brush (overrides fill opacity)", "[, ]"),
    ("Brush / eraser", "Paint / erase the selected mask (brush, nothing selected: new instance)", "Drag"),
    ("Polygon tool", "Add a vertex; first vertex or double-click closes", "Click"),
    ("Polygon tool", "Close and add the instance", "Enter"),
    ("Polygon tool", "Remove the last vertex", "Backspace"),
    ("Polygon tool", "Cancel the polygon", "Esc, right-click"),
    ("Outline tool", "Move a vertex / insert one on an edge / delete one", "Drag, click edge, right-click"),
]


def full_bitmap(inst, height: int, width: int) -> np.ndarray:
    """An overlay instance's mask pasted into a full-image bitmap (core.masks convention)."""
    return mk.paste(inst.x0, inst.y0, inst.full_mask(), height, width)


def stamp_disk(bitmap: np.ndarray, x: float, y: float, diameter: float, value: bool) -> None:
    """Set the pixels whose centres lie within ``diameter / 2`` of ``(x, y)``."""
    r = max(diameter, 1.0) / 2
    h, w = bitmap.shape
    x0, y0, x1, y1 = mk.pixel_window(x - r, y - r, x + r + 1, y + r + 1, h, w)
    if x1 <= x0 or y1 <= y0:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    bitmap[y0:y1, x0:x1][(xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= r * r] = value


def stamp_line(bitmap: np.ndarray, a: QPointF, b: QPointF, diameter: float, value: bool) -> None:
    steps = max(1, int(np.ceil(np.hypot(b.x() - a.x(), b.y() - a.y()) / max(diameter / 4, 0.5))))
    for t in np.linspace(0, 1, steps + 1)[1:]:
        stamp_disk(bitmap, a.x() + (b.x() - a.x()) * t, a.y() + (b.y() - a.y()) * t, diameter, value)


class _EditTool(CanvasTool):
    def __init__(self, apply: Callable[[Op], object]):
        super().__init__()
        self.apply = apply

    def _data(self):
        return getattr(self.canvas, "data", None) if self.canvas is not None else None

    def _tolerance(self) -> float:
        """About 6 screen pixels, in image pixels."""
        zoom = self.canvas.zoom_level() if self.canvas is not None and hasattr(self.canvas, "zoom_level") else 1.0
        return 6.0 / max(zoom, 1e-6)

    def _refresh(self) -> None:
        if self.canvas is not None:
            self.canvas.viewport().update()


class CyclingSelectTool(SelectTool):
    """Click selects the top-most instance; clicking the same pixel again selects the next
    instance under it (overlapping instances), as Tab does anywhere on the canvas."""

    def __init__(self) -> None:
        super().__init__()
        self._at: tuple[int, int] | None = None

    def press(self, pos: QPointF, event) -> bool:
        if event.button() != LEFT or self.canvas is None:
            return False
        at = (int(np.floor(pos.x())), int(np.floor(pos.y())))
        again, self._at = at == self._at, at
        if again and self.canvas.selected_instance is not None:
            return self.canvas.cycle_selection(1) is not None
        hits = self.canvas.instances_at(pos.x(), pos.y())
        self.canvas.select_instance(hits[0] if hits else None)
        return bool(hits)

    def double_click(self, pos: QPointF, event) -> bool:
        return False  # the first click selected; the second must not cycle on


class BrushTool(_EditTool):
    """Paint (or erase) the selected instance's mask; with nothing selected, a brush stroke
    becomes a new instance of ``label_for_new()`` in ``field_for_new()``."""

    name = "brush"

    def __init__(self, apply, erase: bool = False, size: float = 12.0,
                 field_for_new: Callable[[], str] = lambda: GT_FIELD,
                 label_for_new: Callable[[], str | None] = lambda: None):
        super().__init__(apply)
        self.erase = erase
        self.name = "eraser" if erase else "brush"
        self.size = float(size)
        self.field_for_new, self.label_for_new = field_for_new, label_for_new
        self.working: np.ndarray | None = None
        self.target = None
        self._last: QPointF | None = None
        self._cursor: QPointF | None = None
        self._preview: QImage | None = None

    def set_size(self, size: float) -> None:
        self.size = float(min(max(size, 1.0), 512.0))
        if self.canvas is not None:
            self.canvas.tool_message.emit(f"{self.name} size {self.size:.0f} px  ([ smaller, ] larger)")
        self._refresh()

    def press(self, pos: QPointF, event) -> bool:
        data = self._data()
        if event.button() != LEFT or data is None or data.sample_id is None:
            return False
        self.target = getattr(self.canvas, "selected_instance", None)
        if self.target is None and self.erase:
            return False
        self.working = (full_bitmap(self.target, data.height, data.width) if self.target is not None
                        else np.zeros((data.height, data.width), bool))
        stamp_disk(self.working, pos.x(), pos.y(), self.size, not self.erase)
        self._last = pos
        self._preview = QImage(data.width, data.height, QImage.Format.Format_RGBA8888)
        self._update_preview(0, 0, data.width, data.height)
        return True

    def move(self, pos: QPointF, event) -> bool:
        self._cursor = pos
        if self.working is None:
            self._refresh()
            return False
        stamp_line(self.working, self._last, pos, self.size, not self.erase)
        r = self.size / 2 + 1
        h, w = self.working.shape
        x0, y0, x1, y1 = mk.pixel_window(min(self._last.x(), pos.x()) - r, min(self._last.y(), pos.y()) - r,
                                         max(self._last.x(), pos.x()) + r + 1, max(self._last.y(), pos.y()) + r + 1, h, w)
        self._last = pos
        self._update_preview(x0, y0, x1, y1)
        return True

    def release(self, pos: QPointF, event) -> bool:
        if self.working is None:
            return False
        data, bitmap, target = self._data(), self.working, self.target
        self.working, self._last, self._preview = None, None, None
        if target is not None:
            self.apply(SetMask(LabelRef(data.sample_id, target.field, target.id), bitmap))
        elif bitmap.any():
            label = self.label_for_new()
            if label:
                self.apply(AddInstance(data.sample_id, self.field_for_new(), label, bitmap=bitmap))
        self._refresh()
        return True

    def wants_key(self, event) -> bool:
        return event.key() in (SMALLER, LARGER)

    def key_press(self, event) -> bool:
        if not self.wants_key(event):
            return False
        self.set_size(self.size * 1.25 if event.key() == LARGER else self.size / 1.25)
        return True

    def activate(self, canvas) -> None:
        super().activate(canvas)
        self.set_size(self.size)  # say the size in the status bar

    def _update_preview(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """The stroke's preview redrawn in the image window ``[x0, x1) x [y0, y1)`` (what the last
        stamps changed), in place: a 4096² image's whole preview is 64 MB, a brush's window a few KB."""
        if x1 > x0 and y1 > y0:
            image = self._preview
            rows = np.frombuffer(image.bits(), np.uint8).reshape(image.height(), image.bytesPerLine())
            window = rows[y0:y1, x0 * 4:x1 * 4].reshape(y1 - y0, x1 - x0, 4)
            window[...] = 0
            window[self.working[y0:y1, x0:x1]] = (255, 255, 255, 110)
        self._refresh()

    def paint(self, painter, exposed: QRectF) -> None:
        if self._preview is not None:
            painter.drawImage(QPointF(0, 0), self._preview)
        if self._cursor is not None:
            painter.setPen(QPen(QColor(255, 80, 80) if self.erase else QColor(255, 255, 255), 0))
            painter.drawEllipse(self._cursor, self.size / 2, self.size / 2)


class PolygonTool(_EditTool):
    """Click vertices; click the first vertex, double-click or Enter to add the instance."""

    name = "polygon"

    def __init__(self, apply, field_for_new: Callable[[], str] = lambda: GT_FIELD,
                 label_for_new: Callable[[], str | None] = lambda: None):
        super().__init__(apply)
        self.field_for_new, self.label_for_new = field_for_new, label_for_new
        self.points: list[QPointF] = []
        self._cursor: QPointF | None = None

    def press(self, pos: QPointF, event) -> bool:
        data = self._data()
        if data is None or data.sample_id is None:
            return False
        if event.button() == RIGHT:
            self.cancel()
            return True
        if event.button() != LEFT:
            return False
        if len(self.points) >= 3 and _dist(pos, self.points[0]) <= self._tolerance():
            self.finish()
            return True
        self.points.append(QPointF(pos))
        self._refresh()
        return True

    def move(self, pos: QPointF, event) -> bool:
        self._cursor = pos
        self._refresh()
        return False

    def finish(self):
        data = self._data()
        points, self.points = self.points, []
        label = self.label_for_new() if len(points) >= 3 else None
        self._refresh()
        if data is None or not label:
            return None
        flat = tuple(v for p in points for v in (p.x(), p.y()))
        return self.apply(AddInstance(data.sample_id, self.field_for_new(), label, polygons=(flat,)))

    def cancel(self) -> None:
        self.points = []
        self._refresh()

    def undo_vertex(self) -> None:
        if self.points:
            self.points.pop()
            self._refresh()

    def double_click(self, pos: QPointF, event) -> bool:
        if event.button() == LEFT and len(self.points) >= 3:  # the first click of it added the last vertex
            self.finish()
            return True
        return self.press(pos, event)

    def wants_key(self, event) -> bool:
        return bool(self.points) and event.key() in (*ENTER, ESC, BACKSPACE)

    def key_press(self, event) -> bool:
        if not self.wants_key(event):
            return False
        key = event.key()
        if key in ENTER:
            self.finish()
        elif key == ESC:
            self.cancel()
        else:
            self.undo_vertex()
        return True

    def deactivate(self) -> None:
        self.cancel()
        super().deactivate()

    def paint(self, painter, exposed: QRectF) -> None:
        if not self.points:
            return
        painter.setPen(QPen(QColor(255, 255, 0), 0))
        pts = self.points + ([self._cursor] if self._cursor is not None else [])
        painter.drawPolyline(QPolygonF(pts))
        for p in self.points:
            painter.drawEllipse(p, self._tolerance() / 3, self._tolerance() / 3)


class OutlineTool(_EditTool):
    """Edit the selected mask's outline as polygons: drag a vertex, press on an edge to insert
    one, right-click a vertex to delete it. Holes of the mask are kept."""

    name = "outline"

    def __init__(self, apply):
        super().__init__(apply)
        self.target = None
        self.polygons: list[list[list[float]]] = []  # [[x, y], ...] per outer contour
        self._holes: np.ndarray | None = None
        self._drag: tuple[int, int] | None = None
        self._dirty = False

    def load(self, inst) -> None:
        """Start editing ``inst`` (the selected instance)."""
        data = self._data()
        self.target = inst
        if inst is None or data is None:
            self.polygons, self._holes = [], None
            self._refresh()
            return
        bitmap = full_bitmap(inst, data.height, data.width)
        polys = mk.bitmap_to_polygons(bitmap)
        self.polygons = [np.asarray(p, float).reshape(-1, 2).tolist() for p in polys]
        filled = mk.coco_to_bitmap(polys, data.height, data.width) if polys else np.zeros_like(bitmap)
        self._holes = filled & ~bitmap
        self._refresh()

    def activate(self, canvas) -> None:
        super().activate(canvas)
        self.load(canvas.selected_instance)

    def deactivate(self) -> None:
        self.load(None)
        super().deactivate()

    def selection_changed(self, inst) -> None:
        self.load(inst)  # the outline of what is selected now (after an edit: the new mask's)

    def press(self, pos: QPointF, event) -> bool:
        selected = getattr(self.canvas, "selected_instance", None) if self.canvas is not None else None
        if selected is None:
            return False
        if self.target is None or (selected.field, selected.id) != (self.target.field, self.target.id):
            self.load(selected)
        hit = self._vertex_at(pos)
        if event.button() == RIGHT and hit is not None:
            poly = self.polygons[hit[0]]
            if len(poly) > 3:
                poly.pop(hit[1])
                self._commit()
            return True
        if event.button() != LEFT:
            return False
        if hit is None:
            hit = self._insert_on_edge(pos)
        if hit is None:
            return False
        self._drag = hit
        return True

    def move(self, pos: QPointF, event) -> bool:
        if self._drag is None:
            return False
        i, j = self._drag
        self.polygons[i][j] = [pos.x(), pos.y()]
        self._dirty = True
        self._refresh()
        return True

    def release(self, pos: QPointF, event) -> bool:
        if self._drag is None:
            return False
        self._drag = None
        if self._dirty:
            self._commit()
        return True

    def bitmap(self) -> np.ndarray:
        data = self._data()
        polys = [[v for p in poly for v in p] for poly in self.polygons if len(poly) >= 3]
        out = mk.coco_to_bitmap(polys, data.height, data.width) if polys else np.zeros((data.height, data.width), bool)
        return out & ~self._holes if self._holes is not None else out

    def _commit(self) -> None:
        data, target = self._data(), self.target
        self._dirty = False
        self.apply(SetMask(LabelRef(data.sample_id, target.field, target.id), self.bitmap()))
        if self.target is target:  # not redrawn (the edit was refused): back to the mask as it is
            self.load(target)

    def _vertex_at(self, pos: QPointF) -> tuple[int, int] | None:
        best, tol = None, self._tolerance()
        for i, poly in enumerate(self.polygons):
            for j, (x, y) in enumerate(poly):
                d = np.hypot(x - pos.x(), y - pos.y())
                if d <= tol and (best is None or d < best[0]):
                    best = (d, i, j)
        return best[1:] if best else None

    def _insert_on_edge(self, pos: QPointF) -> tuple[int, int] | None:
        best, tol = None, self._tolerance()
        p = np.array([pos.x(), pos.y()])
        for i, poly in enumerate(self.polygons):
            for j in range(len(poly)):
                a, b = np.array(poly[j]), np.array(poly[(j + 1) % len(poly)])
                ab = b - a
                t = float(np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-12), 0, 1))
                d = float(np.hypot(*(a + t * ab - p)))
                if d <= tol and (best is None or d < best[0]):
                    best = (d, i, j + 1)
        if best is None:
            return None
        _, i, j = best
        self.polygons[i].insert(j, [pos.x(), pos.y()])
        return i, j

    def paint(self, painter, exposed: QRectF) -> None:
        if not self.polygons:
            return
        painter.setPen(QPen(QColor(0, 255, 255), 0))
        r = self._tolerance() / 3
        for poly in self.polygons:
            path = QPainterPath()
            path.addPolygon(QPolygonF([QPointF(x, y) for x, y in poly]))
            path.closeSubpath()
            painter.drawPath(path)
            for x, y in poly:
                painter.drawRect(QRectF(x - r, y - r, 2 * r, 2 * r))


def _dist(a: QPointF, b: QPointF) -> float:
    return float(np.hypot(a.x() - b.x(), a.y() - b.y()))


def make_edit_tools(apply, field_for_new=lambda: GT_FIELD, label_for_new=lambda: None) -> dict[str, CanvasTool]:
    """One of each edit tool, sharing the ``apply`` sink and the new-instance defaults."""
    return {
        "select": CyclingSelectTool(),
        "brush": BrushTool(apply, False, field_for_new=field_for_new, label_for_new=label_for_new),
        "eraser": BrushTool(apply, True),
        "polygon": PolygonTool(apply, field_for_new, label_for_new),
        "outline": OutlineTool(apply),
    }
