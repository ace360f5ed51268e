"""The loupe: a magnified, nearest-neighbour view around the cursor with contours on pixel edges."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

from maskreview.gui.canvas.view import ImageCanvas, cosmetic_pen, edge_path


class Loupe(QWidget):
    """Follows ``canvas.cursor_moved``; draws the canvas's image and layers around that point."""

    def __init__(self, canvas: ImageCanvas, magnification: float = 8.0, parent=None):
        super().__init__(parent)
        self.canvas = canvas
        self.magnification = magnification
        self.center = QPointF(-1, -1)
        self.setMinimumSize(160, 160)
        # paintEvent fills every pixel: the dock beneath is not painted first at each browse step
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        canvas.cursor_moved.connect(self.follow)
        canvas.overlays_changed.connect(self._overlays_changed)
        # a new sample or new overlays repaint here a turn after the canvas's own repaint, not in
        # the same block (issue 17's stall row); the cursor's moves repaint at once
        self._repaint_later = QTimer(self, singleShot=True, interval=0, timeout=self.update)

    def _overlays_changed(self) -> None:
        data = self.canvas.data
        if data is not None and not QRectF(0, 0, data.width, data.height).contains(self.center):
            self.center = QPointF(data.width / 2, data.height / 2)
        elif self.canvas.changed_rects is not None:  # labels patched in place: only if one is in view here
            src = self._source().adjusted(-2, -2, 2, 2)  # a contour's pen reaches past the pixels
            if not any(src.intersects(QRectF(x0, y0, x1 - x0, y1 - y0)) for x0, y0, x1, y1 in self.canvas.changed_rects):
                return
        self._repaint_later.start()

    def _source(self) -> QRectF:
        """The image rectangle shown."""
        z = self.magnification
        half_w, half_h = self.width() / (2 * z), self.height() / (2 * z)
        return QRectF(self.center.x() - half_w, self.center.y() - half_h, 2 * half_w, 2 * half_h)

    def follow(self, x: float, y: float) -> None:
        self.center = QPointF(x, y)
        if self.isVisible():
            self.update()

    def wheelEvent(self, event) -> None:
        step = 1.25 if event.angleDelta().y() > 0 else 0.8
        self.magnification = min(max(self.magnification * step, 2.0), 64.0)
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window().color().darker(140))
        canvas = self.canvas
        if canvas.data is None or canvas.image_qimage is None:
            painter.end()
            return
        z = self.magnification
        cx, cy = self.center.x(), self.center.y()
        src = self._source()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.translate(self.width() / 2, self.height() / 2)
        painter.scale(z, z)
        painter.translate(-cx, -cy)
        img_rect = QRectF(0, 0, canvas.data.width, canvas.data.height)
        target = src.intersected(img_rect)
        if not target.isEmpty():
            painter.drawImage(target, canvas.image_qimage, target)
            canvas.ensure_layers(target)  # zoomed in, layers are rendered tile by tile
            for image in canvas.layer_images.values():
                painter.drawImage(target, image, target)
        if canvas.style.contours:
            for inst in canvas.instances_in(src):  # the grid index's few, not every instance
                if QRectF(inst.x0, inst.y0, inst.w, inst.h).intersects(src):
                    painter.setPen(cosmetic_pen(canvas.color_of(inst), 2.0, self.devicePixelRatioF()))
                    painter.drawPath(edge_path(inst))
        painter.resetTransform()
        pen = QPen(QColor(255, 255, 255, 180), 1.0)
        painter.setPen(pen)
        mx, my = self.width() / 2, self.height() / 2
        painter.drawLine(QPointF(mx - 8, my), QPointF(mx + 8, my))
        painter.drawLine(QPointF(mx, my - 8), QPointF(mx, my + 8))
        painter.setPen(self.palette().text().color())
        painter.drawText(self.rect().adjusted(4, 2, -4, -2), Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft,
                         f"{z:.0f}×  ({int(cx)}, {int(cy)})")
        painter.end()
