"""Self-contained evaluation widgets. Each takes core results and emits ids; none touches FiftyOne.

- :class:`SummaryWidget`: mAP & friends and the live TP/FP/FN totals;
- :class:`ClassTable`: AP, AP50, precision, recall, F1, support, TP/FP/FN per class, sortable;
- :class:`PRCurves`: COCOeval's PR curve per class (pyqtgraph);
- :class:`ConfusionMatrix`: background row and column; a click emits that cell's exact ids;
- :class:`GroupsTable`: failure groups (class / size / occlusion) and TIDE error types.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QGridLayout, QHBoxLayout, QHeaderView, QLabel,
                               QTableView, QTableWidget, QTableWidgetItem, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
IDS_ROLE = Qt.ItemDataRole.UserRole + 2


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return "n/a" if v < 0 else f"{v:.{digits}f}"
    return str(v)


class SummaryWidget(QWidget):
    STATS = ("mAP", "AP50", "AP75", "APs", "APm", "APl", "AR100")

    def __init__(self, parent=None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 4, 4, 4)
        self.values: dict[str, QLabel] = {}
        for i, name in enumerate(self.STATS + ("TP", "FP", "FN", "precision", "recall", "F1")):
            title = QLabel(name)
            title.setStyleSheet("color: gray")
            value = QLabel("–")
            value.setObjectName(f"stat_{name}")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(title, 2 * (i // 7), i % 7)
            grid.addWidget(value, 2 * (i // 7) + 1, i % 7)
            self.values[name] = value
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        grid.addWidget(self.caption, 4, 0, 1, 7)

    def set_summary(self, summary: dict, caption: str = "") -> None:
        for name in self.STATS:
            self.values[name].setText(_fmt(summary.get(name)))
        self.caption.setText(caption)

    def set_totals(self, totals: dict) -> None:
        for name in ("TP", "FP", "FN", "precision", "recall", "F1"):
            self.values[name].setText(_fmt(totals.get(name)))

    def text(self, name: str) -> str:
        return self.values[name].text()


LIVE_COLUMNS = ("precision", "recall", "F1", "TP", "FP", "FN")  # at the sliders' thresholds, after re-matching


class ClassTable(QTableView):
    """Sortable per-class table; ``class_clicked(name)`` on a click."""

    COLUMNS = ("class", "AP", "AP50", "precision", "recall", "F1", "support", "TP", "FP", "FN")
    class_clicked = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.source = QStandardItemModel(0, len(self.COLUMNS), self)
        self.source.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.source)
        self.proxy.setSortRole(SORT_ROLE)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().hide()
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.clicked.connect(lambda index: self.class_clicked.emit(self.proxy.index(index.row(), 0).data()))

    def set_rows(self, rows: list[dict]) -> None:
        self.setSortingEnabled(False)
        self.source.setRowCount(0)
        for row in rows:
            items = []
            for col in self.COLUMNS:
                v = row.get(col)
                item = QStandardItem(_fmt(v))
                sort = v if isinstance(v, str) else (-math.inf if v is None or (isinstance(v, float) and
                                                                               (math.isnan(v) or v < 0)) else float(v))
                item.setData(sort, SORT_ROLE)
                if col != "class":
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                items.append(item)
            self.source.appendRow(items)
        self.setSortingEnabled(True)

    def update_counts(self, per_class: list[dict]) -> None:
        """Live TP/FP/FN/precision/recall/F1 after re-matching (AP columns stay COCO's)."""
        by_name = {row["class"]: row for row in per_class}
        for r in range(self.source.rowCount()):
            row = by_name.get(self.source.item(r, 0).text())
            if row is None:
                continue
            for col in LIVE_COLUMNS:
                v = row[col]
                item = self.source.item(r, self.COLUMNS.index(col))
                item.setText(_fmt(v))
                item.setData(-math.inf if isinstance(v, float) and math.isnan(v) else float(v), SORT_ROLE)

    def pending_counts(self) -> None:
        """The live columns say "…" until :meth:`update_counts` brings them at the current
        thresholds (an evaluation's own outcomes are at confidence 0: never shown under a slider
        that says otherwise)."""
        for r in range(self.source.rowCount()):
            for col in LIVE_COLUMNS:
                item = self.source.item(r, self.COLUMNS.index(col))
                item.setText("…")
                item.setData(-math.inf, SORT_ROLE)

    def column_values(self, column: str) -> list[str]:
        c = self.COLUMNS.index(column)
        return [self.proxy.index(r, c).data() for r in range(self.proxy.rowCount())]


class PRCurves(QWidget):
    """One PR curve per class at IoU 0.5, 0.75 or averaged over COCO's ten thresholds."""

    IOUS = (("IoU 0.50", 0.5), ("IoU 0.75", 0.75), ("IoU .50:.95 (mean)", None))

    def __init__(self, parent=None):
        super().__init__(parent)
        self.results = None
        self.plot = None  # made when first shown: importing pyqtgraph is half a second of start-up
        self.curves: dict[str, object] = {}
        self.iou_box = QComboBox()
        for text, _ in self.IOUS:
            self.iou_box.addItem(text)
        self.iou_box.currentIndexChanged.connect(self._redraw)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(QLabel("PR curves at"))
        top.addWidget(self.iou_box)
        top.addStretch(1)
        layout.addLayout(top)

    def showEvent(self, event) -> None:
        if self.plot is None:
            self._make_plot()
            self._redraw()
        super().showEvent(event)

    def _make_plot(self) -> None:
        import pyqtgraph as pg  # on first show: importing it is half a second of start-up

        self._pg = pg
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "recall")
        self.plot.setLabel("left", "precision")
        self.plot.setXRange(0, 1)
        self.plot.setYRange(0, 1.02)
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.layout().addWidget(self.plot)

    def set_results(self, results) -> None:
        self.results = results
        self._redraw()

    def _redraw(self) -> None:
        from maskreview.core.evaluation.analysis import pr_curves
        from maskreview.gui.canvas.overlay import class_color

        if self.plot is None:
            return  # drawn when first shown
        self.plot.clear()
        self.legend.clear()
        self.curves = {}
        if self.results is None:
            return
        iou = self.IOUS[self.iou_box.currentIndex()][1]
        for name, (recall, precision) in pr_curves(self.results, iou).items():
            pen = self._pg.mkPen(color=tuple(class_color(name, self.results.classes))[:3], width=2)
            self.curves[name] = self.plot.plot(recall, precision, pen=pen, name=name)

    def highlight(self, name: str) -> None:
        for cls, curve in self.curves.items():
            pen = curve.opts["pen"]
            pen = self._pg.mkPen(pen.color(), width=4 if cls == name else 1.5)
            curve.setPen(pen)


class ConfusionMatrix(QTableWidget):
    """Rows: GT class, columns: predicted class, with a background row and column.

    ``cell_selected(sample_ids, label_ids, description)`` carries exactly the labels of the cell.
    """

    cell_selected = Signal(object, object, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.confusion = None
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.cellClicked.connect(self._clicked)

    def set_confusion(self, confusion) -> None:
        self.confusion = confusion
        labels = confusion.labels
        n = len(labels)
        self.clear()
        self.setRowCount(n)
        self.setColumnCount(n)
        self.setHorizontalHeaderLabels([f"pred: {x}" for x in labels])
        self.setVerticalHeaderLabels([f"GT: {x}" for x in labels])
        m = confusion.matrix
        peak = max(int(m.max()), 1)
        for r in range(n):
            for c in range(n):
                v = int(m[r, c])
                item = QTableWidgetItem(str(v) if v else "")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if v:
                    t = 0.15 + 0.75 * math.sqrt(v / peak)
                    base = (46, 160, 67) if r == c else (214, 69, 65)
                    item.setBackground(QBrush(QColor(*(int(255 - (255 - b) * t) for b in base))))
                    item.setToolTip(f"GT {labels[r]} → predicted {labels[c]}: {v}")
                self.setItem(r, c, item)

    def _clicked(self, row: int, col: int) -> None:
        if self.confusion is None or not self.confusion.matrix[row, col]:
            return
        samples, labels = self.confusion.cell_ids(row, col)
        names = self.confusion.labels
        self.cell_selected.emit(samples, labels, f"GT {names[row]} → predicted {names[col]}")


class GroupsTable(QTreeWidget):
    """Failure groups by class / size / occlusion, and TIDE error types, each clickable.

    ``group_selected(sample_ids, label_ids, description)`` on a click.
    """

    group_selected = Signal(object, object, str)
    HEADERS = ("group", "GT", "preds", "FP", "FN", "FP rate", "FN rate")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setColumnCount(len(self.HEADERS))
        self.setHeaderLabels(list(self.HEADERS))
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.itemClicked.connect(self._clicked)

    def set_groups(self, groups, tide_report=None) -> None:
        self.clear()
        parents: dict[str, QTreeWidgetItem] = {}
        for g in groups:
            parent = parents.get(g.kind)
            if parent is None:
                parent = parents[g.kind] = QTreeWidgetItem(self, [f"by {g.kind}"])
                parent.setExpanded(True)
            item = QTreeWidgetItem(parent, [g.name, str(g.n_gt), str(g.n_pred) if g.kind != "occlusion" else "–",
                                            str(g.fp) if g.kind != "occlusion" else "–", str(g.fn),
                                            _fmt(g.fp_rate), _fmt(g.fn_rate)])
            item.setData(0, IDS_ROLE, (g.sample_ids, g.label_ids, f"{g.kind} {g.name}: FP and FN"))
        if tide_report is not None:
            parent = QTreeWidgetItem(self, [f"TIDE errors (AP50 {tide_report.ap50:.3f}; ΔAP50 if fixed)"])
            parent.setExpanded(True)
            for err, n in tide_report.counts.items():
                item = QTreeWidgetItem(parent, [err, "", "", str(n) if err != "missed" else "",
                                                str(n) if err == "missed" else "", f"+{tide_report.delta_ap[err]:.3f}", ""])
                samples, labels = tide_report.ids(err)
                item.setData(0, IDS_ROLE, (samples, labels, f"TIDE {err} errors"))

    def _clicked(self, item: QTreeWidgetItem, _col: int) -> None:
        data = item.data(0, IDS_ROLE)
        if data:
            self.group_selected.emit(list(data[0]), list(data[1]), data[2])

    def find(self, name: str) -> QTreeWidgetItem | None:
        hits = self.findItems(name, Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive, 0)
        return hits[0] if hits else None


def confusion_cell_center(widget: ConfusionMatrix, row: int, col: int):
    return widget.visualItemRect(widget.item(row, col)).center()

