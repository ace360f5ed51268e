"""The brush's stroke preview is redrawn in place, in the window the last stamps changed: one image
for the stroke, not a new whole-image RGBA array and QImage per mouse move (64 MB each at 4096²),
and always the stroke so far, exactly."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent


def _event(kind, x, y, buttons=Qt.MouseButton.LeftButton):
    return QMouseEvent(kind, QPointF(x, y), QPointF(x, y), Qt.MouseButton.LeftButton, buttons,
                       Qt.KeyboardModifier.NoModifier)


def _pixels(image) -> np.ndarray:
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 4].reshape(image.height(), image.width(), 4)


def _address(image) -> int:
    return np.frombuffer(image.constBits(), np.uint8).__array_interface__["data"][0]


def test_the_brush_preview_is_one_image_per_stroke_redrawn_where_the_stroke_moved(qtbot):
    from maskreview.gui.canvas import ImageCanvas, build_sample_data
    from maskreview.gui.canvas.edit_tools import BrushTool

    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.set_sample(build_sample_data("s", "", {}, image=np.zeros((300, 400, 3), np.uint8)))
    brush = BrushTool(lambda op: None, size=9)
    canvas.set_tool(brush)
    brush.press(QPointF(50.5, 60.5), _event(QEvent.Type.MouseButtonPress, 50.5, 60.5))
    image, address = brush._preview, _address(brush._preview)  # noqa: SLF001
    for x, y in ((80.5, 62.5), (120.5, 140.5), (399.5, 0.5), (200.5, 299.5)):
        brush.move(QPointF(x, y), _event(QEvent.Type.MouseMove, x, y))
        assert brush._preview is image and _address(image) == address  # noqa: SLF001 - the same pixels, drawn over
        expected = np.zeros((300, 400, 4), np.uint8)
        expected[brush.working] = (255, 255, 255, 110)
        np.testing.assert_array_equal(_pixels(image), expected)
    canvas.set_tool(None)
