"""The canvas tool interface: edit tools (select, brush, eraser, polygon...) plug in here.

A tool receives mouse events in *image* coordinates (one unit = one image pixel, origin at the
top-left corner of pixel (0, 0)) and returns True when it consumed the event; unconsumed left
drags pan the view. Keys reach the tool through ``wants_key``/``key_press`` (the canvas asks
before window shortcuts see them; Tab is the canvas's own: it cycles overlapping instances).
Install one with ``ImageCanvas.set_tool(tool)``; ``set_tool(None)`` goes back to plain navigation. Tools can draw previews in ``paint`` (scene = image coordinates).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt


class CanvasTool:
    name = "navigate"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self) -> None:
        self.canvas = None

    def activate(self, canvas) -> None:
        self.canvas = canvas

    def deactivate(self) -> None:
        self.canvas = None

    def press(self, pos: QPointF, event) -> bool:
        return False

    def move(self, pos: QPointF, event) -> bool:
        return False

    def release(self, pos: QPointF, event) -> bool:
        return False

    def double_click(self, pos: QPointF, event) -> bool:
        """The second press of a double click (by default, a press like any other)."""
        return self.press(pos, event)

    def wants_key(self, event) -> bool:
        """Whether this key, now, is the tool's (it then wins over window shortcuts)."""
        return False

    def key_press(self, event) -> bool:
        return False

    def selection_changed(self, inst) -> None:
        """The canvas's selected instance changed (a click, Tab, or a redraw after an edit)."""

    def paint(self, painter, exposed: QRectF) -> None:
        """Draw a preview; ``painter`` is in image coordinates."""


class SelectTool(CanvasTool):
    """Click an instance to select it (``ImageCanvas.instance_clicked`` is emitted)."""

    name = "select"
    cursor = Qt.CursorShape.ArrowCursor

    def press(self, pos: QPointF, event) -> bool:
        if event.button() != Qt.MouseButton.LeftButton or self.canvas is None:
            return False
        inst = self.canvas.instance_at(pos.x(), pos.y())
        self.canvas.select_instance(inst)
        return inst is not None
