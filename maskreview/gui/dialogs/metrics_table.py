"""Two evaluations side by side: mAP, AP50, AP75 and per-class AP, with the change from A to B."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

SUMMARY = ("mAP", "AP50", "AP75")
_BETTER, _WORSE = QColor(46, 160, 67), QColor(224, 68, 62)


def _fmt(value) -> str:
    if value is None or value < 0:  # pycocotools' -1: the class has no ground truth here
        return "–"
    return f"{value:.3f}"


class MetricsTable(QTableWidget):
    """``set_results(a, b, names=("before", "after"))`` with evaluation dicts (``mAP``...,
    ``per_class``); the change column is green where B is better."""

    def __init__(self, parent=None):
        super().__init__(0, 4, parent)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.verticalHeader().hide()
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.setHorizontalHeaderLabels(["", "A", "B", "change"])

    def set_results(self, a: dict | None, b: dict | None, names: tuple[str, str] = ("A", "B")) -> None:
        a, b = a or {}, b or {}
        self.setHorizontalHeaderLabels(["", *names, "change"])
        classes = list(dict.fromkeys([*(a.get("per_class") or {}), *(b.get("per_class") or {})]))
        rows = [(k, a.get(k), b.get(k), True) for k in SUMMARY]
        rows += [(f"AP {c}", (a.get("per_class") or {}).get(c), (b.get("per_class") or {}).get(c), False)
                 for c in classes]
        self.setRowCount(len(rows))
        for r, (name, va, vb, bold) in enumerate(rows):
            cells = [name, _fmt(va), _fmt(vb), ""]
            if va is not None and vb is not None and va >= 0 and vb >= 0:
                cells[3] = f"{vb - va:+.3f}"
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if bold:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if c == 3 and cells[3] and abs(vb - va) >= 0.0005:
                    item.setForeground(QBrush(_BETTER if vb > va else _WORSE))
                self.setItem(r, c, item)
        self.resizeRowsToContents()

    def value(self, row_name: str, column: int) -> str:
        """The text in row ``row_name`` (e.g. ``mAP``), column 1 (A), 2 (B) or 3 (change)."""
        for r in range(self.rowCount()):
            if self.item(r, 0).text() == row_name:
                return self.item(r, column).text()
        raise KeyError(row_name)
