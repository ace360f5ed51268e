"""The canvas legend, top right over the image: how ground truth and predictions are drawn (each
field shown, in its line style) and what the colours mean in the current colour mode — classes,
fields, TP / FP / FN, or the boundary errors' missed / added pixels; before any evaluation it says
how to run one.

It follows the canvas (``overlays_changed``) and never takes a click: the canvas under it stays
usable. When the canvas frames a label under it (the review queue at an image's top-right
corner), it moves to the first free corner.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QWidget

from maskreview.core.fields import GT_FIELD
from maskreview.gui.canvas import boundary_errors as be, overlay as ov

NO_EVAL_HINT = "No evaluation yet: Evaluate ▸ Evaluate predictions… (Ctrl+Shift+E)"
EVAL_NAMES = {"tp": "true positive", "fp": "false positive", "fn": "false negative (missed)"}
ERROR_NAMES = ("missed: ground truth the prediction left out", "added: prediction outside the ground truth")
MAX_CLASSES = 8
MARGIN, SWATCH_W, SWATCH_H, GAP = 8, 26, 12, 6


@dataclass(frozen=True)
class Row:
    text: str
    rgb: tuple[int, int, int] | None  # None: a line of text only (a hint)
    predicted: bool | None = None  # None: a plain colour swatch; else the field's line style


def legend_rows(canvas) -> list[Row]:
    """What the legend of ``canvas`` lists now (Qt-free apart from reading the canvas)."""
    data = canvas.data
    if data is None:
        return []
    mode = canvas.style.color_mode
    shown = [f for f in canvas.fields() if f not in canvas.style.hidden_fields]
    neutral = (235, 235, 235)
    rows = []
    for name in shown:  # field_summary: kept with the canvas's visible lists (not a scan of every label per edit)
        insts = data.fields.get(name, [])
        predicted = canvas.field_summary(name)[0] if insts else name != GT_FIELD
        rgb = canvas.color_of(insts[0]) if mode == "field" and insts else neutral
        role = "dashed outline, filled" if predicted else "solid outline, hatched"
        rows.append(Row(f"{name}: {role}", rgb, predicted))
    if mode == "class":
        labels = list(dict.fromkeys(label for name in canvas.fields() for label in canvas.field_summary(name)[1]))
        for label in labels[:MAX_CLASSES]:
            rows.append(Row(label, ov.class_color(label, canvas.classes)))
        if len(labels) > MAX_CLASSES:
            rows.append(Row(f"… {len(labels) - MAX_CLASSES} more classes", None))
    elif mode == "eval":
        if any(i.eval for insts in data.fields.values() for i in insts):
            rows += [Row(EVAL_NAMES[k], ov.EVAL_COLORS[k]) for k in ("tp", "fp", "fn")]
            rows.append(Row("not evaluated", ov.NO_EVAL_COLOR))
        else:
            rows.append(Row(NO_EVAL_HINT, None))
    elif mode == "errors":  # the colours as chosen now (Settings may change them: read at each refresh)
        rows += [Row(ERROR_NAMES[0], be.MISSED), Row(ERROR_NAMES[1], be.ADDED)]
    return rows


class CanvasLegend(QWidget):
    def __init__(self, canvas):
        super().__init__(canvas.viewport())  # the viewport's child: a pan scrolled in place repaints it, not smears it
        self.canvas = canvas
        self.rows: list[Row] = []
        self._refreshed = False  # the first refresh always lays out (and hides an empty legend)
        self._avoid: QRect | None = None  # viewport rect of a framed label to keep clear
        self._at = QRect()  # where it is placed (viewport coordinates)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        canvas.overlays_changed.connect(self.refresh)
        canvas.viewport().installEventFilter(self)
        self.refresh()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def refresh(self) -> None:
        rows = legend_rows(self.canvas)
        if rows == self.rows and self._refreshed:  # the same legend (most browse steps): no relayout, no repaint
            return
        self._refreshed = True
        self.rows = rows
        self.setVisible(bool(self.rows))
        self._place()
        self.update()

    def _place(self) -> None:
        metrics = QFontMetrics(self.font())
        width = max((metrics.horizontalAdvance(r.text) + (SWATCH_W + GAP if r.rgb else 0) for r in self.rows),
                    default=0) + 2 * MARGIN + 2  # + 2: elidedText elides a text given its exact advance
        height = len(self.rows) * (metrics.height() + 2) + 2 * MARGIN - 2
        vp = self.canvas.viewport().rect()
        width = min(width, max(vp.width() - 16, 40))
        left, right = vp.left() + 8, vp.right() - width - 8
        top, bottom = vp.top() + 8, vp.bottom() - height - 8
        corners = [QRect(x, y, width, height) for x, y in ((right, top), (left, top), (left, bottom), (right, bottom))]
        avoid = self._avoid
        self._at = next((c for c in corners if avoid is None or not c.intersects(avoid)), corners[0])
        self.setGeometry(self._at)
        self.raise_()

    def stay(self) -> None:
        """Back to its corner after the viewport scrolled its children with its pixels."""
        if self.pos() != self._at.topLeft():
            self.move(self._at.topLeft())

    def keep_clear(self, rect: QRect | None) -> None:
        """Stay off ``rect`` (viewport coordinates; None: back to the top right)."""
        self._avoid = rect
        self._place()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.fillRect(self.rect(), QColor(20, 20, 20, 190))
        metrics = QFontMetrics(self.font())
        line = metrics.height() + 2
        alpha = self.canvas.style.opacity
        for index, row in enumerate(self.rows):
            top = MARGIN + index * line
            x = MARGIN
            if row.rgb is not None:
                self._swatch(painter, QRectF(x, top + (line - SWATCH_H) / 2 - 1, SWATCH_W, SWATCH_H), row, alpha)
                x += SWATCH_W + GAP
            painter.setPen(QColor(240, 240, 240) if row.rgb is not None else QColor(255, 200, 90))
            painter.drawText(QRect(x, top, self.width() - x - MARGIN, line),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.shown_text(row))
        painter.end()

    def shown_text(self, row: Row) -> str:
        """``row``'s text as drawn: elided only when the viewport is narrower than the legend."""
        x = MARGIN + (SWATCH_W + GAP if row.rgb is not None else 0)
        return QFontMetrics(self.font()).elidedText(row.text, Qt.TextElideMode.ElideRight, self.width() - x - MARGIN)

    @staticmethod
    def _swatch(painter: QPainter, rect: QRectF, row: Row, alpha: float) -> None:
        color = QColor(*row.rgb)
        fill = QColor(color)
        fill.setAlphaF(max(min(alpha, 1.0), 0.25))
        if row.predicted is None:  # a colour
            painter.fillRect(rect, color)
            return
        if row.predicted:
            painter.fillRect(rect, fill)
            pen = QPen(color, 1.5, Qt.PenStyle.DashLine)
        else:
            painter.fillRect(rect, QBrush(fill, Qt.BrushStyle.BDiagPattern))
            pen = QPen(color, 2.0, Qt.PenStyle.SolidLine)
        painter.setPen(pen)
        painter.drawRect(rect)
