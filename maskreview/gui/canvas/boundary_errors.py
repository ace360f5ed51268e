"""Boundary errors in view: for each matched pair of the sample on show, the pixels the prediction
missed and the pixels it added, in two colours, with the pair's mask IoU and boundary IoU.

Shown in the ``errors`` colour mode (View ▸ Cycle colour, V; or Shift+V): the instances are drawn
grey and this layer goes on top. The layer is one of the canvas's ``layer_images``, so the loupe
magnifies it too. Pairs are the live matches of the sample (``match_of``: the evaluation's match
at the state's thresholds, else the best mask overlap in another field at the IoU threshold);
the pixels are :func:`maskreview.core.review.pair_diff.pair_diff` (``missed | added`` is the
pair's XOR).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem

MISSED = (0, 200, 255)  # ground truth the prediction left out
ADDED = (255, 110, 0)  # prediction outside the ground truth
LAYER = "boundary errors"
ALPHA = 0.85


class _Chip(QGraphicsItem):
    """A label hanging below a scene point (its top-left) that keeps its screen size at any zoom."""

    def __init__(self, text: str, parent=None):
        super().__init__(parent)
        self.text = text
        self.font = QFont()
        self.font.setPointSizeF(8.5)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setZValue(101)
        metrics = QFontMetricsF(self.font)
        self._rect = QRectF(0, 1, metrics.horizontalAdvance(text) + 8, metrics.height() + 4)

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter, option, widget=None) -> None:
        painter.fillRect(self._rect, QColor(0, 0, 0, 190))
        painter.setFont(self.font)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(self._rect, Qt.AlignmentFlag.AlignCenter, self.text)


def pair_layer(diffs, height: int, width: int) -> np.ndarray:
    """A premultiplied BGRA layer with every diff's missed and added pixels."""
    layer = np.zeros((height, width, 4), np.uint8)
    for d in diffs:
        h, w = d.missed.shape
        region = layer[d.y0:d.y0 + h, d.x0:d.x0 + w]
        for part, (r, g, b) in ((d.missed, MISSED), (d.added, ADDED)):
            region[part[:region.shape[0], :region.shape[1]]] = (b * ALPHA, g * ALPHA, r * ALPHA, 255 * ALPHA)
    return layer


class BoundaryErrors:
    def __init__(self, canvas, state):
        self.canvas, self.state = canvas, state
        self.item = QGraphicsPixmapItem()
        self.item.setZValue(100)
        self.item.setVisible(False)
        canvas.scene().addItem(self.item)
        self.chips: list[_Chip] = []
        self.pairs: list = []  # (gt instance, prediction instance, PairDiff) on show
        self._key = None
        self._image = None
        canvas.overlays_changed.connect(self.refresh)

    @property
    def active(self) -> bool:
        return self.state.display.color_mode == "errors"

    def matched_pairs(self):
        """``(gt, prediction, diff)`` for each visible ground truth with a match in another field."""
        from maskreview.core.review.pair_diff import pair_diff

        canvas, data = self.canvas, self.canvas.data
        fields = canvas.fields()
        if data is None or len(fields) < 2:
            return []
        out = []
        for inst in canvas.visible_instances(fields[0]):
            match, iou = canvas.match_of(inst)
            if match is None or match.field == inst.field or iou is None or iou < self.state.thresholds.iou:
                continue
            diff = pair_diff((inst.x0, inst.y0, inst.full_mask()), (match.x0, match.y0, match.full_mask()),
                             data.height, data.width)
            out.append((inst, match, diff))
        return out

    def refresh(self) -> None:
        canvas, data = self.canvas, self.canvas.data
        for chip in self.chips:
            canvas.scene().removeItem(chip)
        self.chips = []
        if not self.active or data is None:
            self.item.setVisible(False)
            self.pairs = []
            return
        key = (id(data), tuple((i.id, i.match_id, i.eval) for insts in data.fields.values() for i in insts),
               self.state.thresholds.confidence, self.state.thresholds.iou, self.state.display.hidden_fields,
               self.state.display.hidden_classes)
        if key != self._key:
            from maskreview.gui.canvas.view import qimage_from_layer

            self.pairs = self.matched_pairs()
            self._image = qimage_from_layer(pair_layer([d for _, _, d in self.pairs], data.height, data.width))
            self.item.setPixmap(QPixmap.fromImage(self._image))
            self._key = key
        self.item.setVisible(True)
        canvas.layer_images[LAYER] = self._image  # the loupe draws the canvas's layers
        for gt, pred, d in self.pairs:
            chip = _Chip(f"IoU {d.iou:.2f} · boundary {d.biou:.2f} · −{d.n_missed} +{d.n_added} px")
            chip.setPos(min(gt.x0, pred.x0), max(gt.y0, pred.y0))  # below both boxes' tops: their labels sit above
            canvas.scene().addItem(chip)
            self.chips.append(chip)

    def describe(self) -> str:
        n = len(self.pairs)
        return (f"boundary errors: {n} matched pair{'s' if n != 1 else ''}; blue: ground truth the prediction missed, "
                "orange: prediction outside the ground truth")
