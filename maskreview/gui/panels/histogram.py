"""Class distribution per label field as grouped bars; clicking a bar filters the browser."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from maskreview.gui.canvas.overlay import FIELD_COLORS


class ClassHistogram(QWidget):
    """``bar_clicked(field, class)``; clicking the selected bar again sends ``(None, None)``."""

    bar_clicked = Signal(object, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.counts: dict[str, dict[str, int]] = {}
        self.counted = False  # set_counts not called yet (the first count runs behind the window's opening)
        self.classes: list[str] = []
        self.selected: tuple | None = None
        self._bars: list[tuple[QRectF, str, str]] = []
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)

    def set_counts(self, counts: dict[str, dict[str, int]], classes: list[str] | None = None) -> None:
        names = list(classes or [])
        for per_class in counts.values():
            names += [c for c in sorted(per_class) if c not in names]
        if self.counted and counts == self.counts and names == self.classes:  # recounted, unchanged: no repaint
            return
        self.counts = counts
        self.classes = names
        self.counted = True
        self.update()

    def empty_text(self) -> str:
        """What an empty chart says: labels not counted yet are not "no labels"."""
        return "No labels" if self.counted else "Counting labels…"

    def bar_rect(self, field: str, cls: str) -> QRectF | None:
        for rect, f, c in self._bars:
            if f == field and c == cls:
                return rect
        return None

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        pal = self.palette()
        painter.fillRect(self.rect(), pal.base())
        self._bars = []
        fields = list(self.counts)
        if not fields or not self.classes:
            painter.setPen(pal.text().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.empty_text())
            return
        fm = painter.fontMetrics()
        legend_h = fm.height() + 4
        label_h = fm.height() + 4
        top, bottom = legend_h + fm.height() + 2, self.height() - label_h
        left, right = 6, self.width() - 6
        peak = max([n for per in self.counts.values() for n in per.values()] + [1])
        group_w = (right - left) / len(self.classes)
        bar_w = max(2.0, (group_w - 6) / len(fields))
        count_font = self._count_font(painter.font(), bar_w, peak)
        x = left
        for i, name in enumerate(fields):
            color = QColor(*FIELD_COLORS[i % len(FIELD_COLORS)])
            painter.fillRect(QRectF(x, 4, 10, 10), color)
            painter.setPen(pal.text().color())
            painter.drawText(int(x + 14), 4 + fm.ascent() - 1, name)
            x += 24 + fm.horizontalAdvance(name)
        for k, cls in enumerate(self.classes):
            gx = left + k * group_w + 3
            for i, name in enumerate(fields):
                n = self.counts[name].get(cls, 0)
                h = (bottom - top) * n / peak
                rect = QRectF(gx + i * bar_w, bottom - h, bar_w - 1, h)
                self._bars.append((QRectF(rect.x(), top, rect.width(), bottom - top), name, cls))
                color = QColor(*FIELD_COLORS[i % len(FIELD_COLORS)])
                if self.selected is not None and self.selected != (name, cls):
                    color.setAlpha(90)
                painter.fillRect(rect, color)
                if self.selected == (name, cls):
                    painter.setPen(QPen(pal.text().color(), 2))
                    painter.drawRect(rect)
                if n and count_font is not None:
                    font = painter.font()
                    painter.setFont(count_font)
                    painter.setPen(pal.text().color())
                    height = QFontMetrics(count_font).height()
                    painter.drawText(QRectF(rect.x(), rect.y() - height, bar_w, height), Qt.AlignmentFlag.AlignCenter,
                                     _count_text(n))
                    painter.setFont(font)
            painter.setPen(pal.text().color())
            painter.drawText(QRectF(left + k * group_w, bottom + 2, group_w, label_h), Qt.AlignmentFlag.AlignHCenter,
                             fm.elidedText(cls, Qt.TextElideMode.ElideRight, int(group_w)))
        painter.end()

    @staticmethod
    def _count_font(font: QFont, bar_w: float, peak: int) -> QFont | None:
        """One font for every count above the bars: the largest (down to 65 %) in which the widest
        count fits a bar; None when none does (the tooltip has the count too)."""
        for scale in (1.0, 0.8, 0.65):
            sized = QFont(font)
            sized.setPointSizeF(font.pointSizeF() * scale)
            if bar_w > QFontMetrics(sized).horizontalAdvance(_count_text(peak)):
                return sized
        return None

    def mousePressEvent(self, event) -> None:
        for rect, field, cls in self._bars:
            if rect.contains(event.position()):
                self.selected = None if self.selected == (field, cls) else (field, cls)
                self.update()
                self.bar_clicked.emit(*(self.selected or (None, None)))
                return

    def mouseMoveEvent(self, event) -> None:
        for rect, field, cls in self._bars:
            if rect.contains(event.position()):
                self.setToolTip(f"{cls} in {field}: {self.counts[field].get(cls, 0)} (click to filter)")
                return
        self.setToolTip("")


def _count_text(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 10_000 else str(n)
