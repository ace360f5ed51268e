"""Evaluate ▸ Compare models…: two prediction fields against the ground truth (``core.compare``),
in a dock below the canvas (tabbed with the Evaluation dock) so that what a click filters stays
in view.

mAP, AP50, AP75 and per-class AP side by side; per ground-truth instance, which model found it
(A only, B only, both, class changed), counted per class and listed. Clicking a count or a row
filters the browser to those samples and the canvas to those labels (like the evaluation
dock's confusion cells, through ``window.apply_filter``).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from maskreview.core.fields import GT_FIELD
from maskreview.gui import workers
from maskreview.gui.dialogs.metrics_table import MetricsTable

STATUSES = (("a_only", "A only"), ("b_only", "B only"), ("both", "both"), ("class_changed", "class changed"),
            ("neither", "neither"))
SHOW = (("all", "every instance"), ("a_only", "found by A only"), ("b_only", "found by B only"),
        ("both", "found by both"), ("class_changed", "class changed"), ("improved", "IoU better in B"),
        ("worse", "IoU worse in B"), ("neither", "found by neither"))


def _matches(row, key: str) -> bool:
    if key == "all":
        return True
    if key == "class_changed":
        return bool(row.class_changed)
    if key == "improved":  # B found it and A did not, or both did and B's mask fits better
        return row.status == "b_only" or (row.status == "both" and (row.iou_change or 0) > 0)
    if key == "worse":
        return row.status == "a_only" or (row.status == "both" and (row.iou_change or 0) < 0)
    return row.status == key


def _label_ids(rows) -> list[str]:
    return [i for r in rows for i in (r.gt_id, r.a_id, r.b_id) if i]


class NumericItem(QTableWidgetItem):
    """Sorts by the number it holds (empty cells last)."""

    def __init__(self, value: float | None, text: str | None = None):
        super().__init__(text if text is not None else ("" if value is None else f"{value:.3f}"))
        self.value = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other) -> bool:
        a = self.value if self.value is not None else float("inf")
        b = getattr(other, "value", None)
        return a < (b if b is not None else float("inf"))


class ComparePanel(QWidget):
    """``filter_requested(sample_ids, label_ids, description)`` when a count or row is clicked."""

    filter_requested = Signal(object, object, str)
    compare_requested = Signal(str, str, str)  # gt, a, b

    def __init__(self, fields: list[str], models: dict[str, dict], gt_field: str | None, parent=None):
        super().__init__(parent)
        self.models = models
        self.comparison = None
        self.shown_rows: list = []
        self.gt_box, self.a_box, self.b_box = QComboBox(), QComboBox(), QComboBox()
        for box in (self.gt_box, self.a_box, self.b_box):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(18)
        self.set_fields(fields, models, gt_field)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setDefault(True)
        self.compare_button.clicked.connect(self.request)
        top = QHBoxLayout()
        for text, box in (("Ground truth", self.gt_box), ("A", self.a_box), ("B", self.b_box)):
            top.addWidget(QLabel(text))
            top.addWidget(box, 1)
        top.addWidget(self.compare_button)
        self.status = QLabel("Pick two prediction fields and the ground truth.")
        self.status.setWordWrap(True)

        self.metrics = MetricsTable()
        self.counts = QTableWidget(0, 1 + len(STATUSES))
        self.counts.setHorizontalHeaderLabels(["class", *(t for _, t in STATUSES)])
        self.counts.setToolTip("Click a count: the browser and canvas show those instances")
        self.counts.cellClicked.connect(self._count_clicked)
        self.show_box = QComboBox()
        for key, text in SHOW:
            self.show_box.addItem(text, key)
        self.show_box.currentIndexChanged.connect(lambda _i: self._fill_rows())
        self.rows = QTableWidget(0, 8)
        self.rows.setHorizontalHeaderLabels(["sample", "GT class", "found by", "IoU change", "A class", "A IoU",
                                             "B class", "B IoU"])
        self.rows.setToolTip("Click a row: the browser shows its sample, the canvas its labels (GT, A, B)")
        self.rows.cellClicked.connect(self._row_clicked)
        for table in (self.counts, self.rows):
            table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
            table.verticalHeader().hide()
            table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
            table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.counts.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.rows.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.rows.setSortingEnabled(True)

        instances = QWidget()
        v = QVBoxLayout(instances)
        v.setContentsMargins(0, 0, 0, 0)
        show_row = QHBoxLayout()
        show_row.addWidget(QLabel("Show"))
        show_row.addWidget(self.show_box)
        show_row.addStretch(1)
        self.clear_button = QPushButton("Show all samples")
        self.clear_button.clicked.connect(lambda: self.filter_requested.emit(None, None, "all"))
        show_row.addWidget(self.clear_button)
        v.addLayout(show_row)
        v.addWidget(self.rows, 1)
        summary = QSplitter(Qt.Orientation.Vertical)
        summary.addWidget(self.metrics)
        summary.addWidget(self.counts)
        split = QSplitter(Qt.Orientation.Horizontal)  # the dock is wide and low
        split.addWidget(summary)
        split.addWidget(instances)
        split.setSizes([420, 600])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)

    def set_fields(self, fields: list[str], models: dict[str, dict], gt_field: str | None) -> None:
        """Offer these fields (prediction fields: those a model wrote, else every other one)."""
        self.models = models
        keep = (self.gt_box.currentData(), self.a_box.currentData(), self.b_box.currentData())
        predictions = [f for f in fields if f in models] or [f for f in fields if f != gt_field]
        for box, names in ((self.gt_box, fields), (self.a_box, predictions), (self.b_box, predictions)):
            box.clear()
            for name in names:
                box.addItem(self._field_text(name), name)
        wanted = (keep[0] or gt_field, keep[1] or (predictions[0] if predictions else None),
                  keep[2] or (predictions[-1] if len(predictions) > 1 else None))
        for box, name in zip((self.gt_box, self.a_box, self.b_box), wanted):
            if name is not None and box.findData(name) >= 0:
                box.setCurrentIndex(box.findData(name))

    def _short(self, name: str) -> str:
        from maskreview.gui.panels.fields import short_model_name

        record = self.models.get(name)
        return short_model_name(record) if record else name

    def _field_text(self, name: str) -> str:
        from maskreview.gui.panels.fields import short_model_name

        record = self.models.get(name)
        return f"{name} — {short_model_name(record)}" if record else name

    def fields(self) -> tuple[str, str, str]:
        return self.gt_box.currentData(), self.a_box.currentData(), self.b_box.currentData()

    def request(self) -> None:
        gt, a, b = self.fields()
        if not (gt and a and b) or a == b or gt in (a, b):
            self.status.setText("Pick two different prediction fields and a ground-truth field.")
            return
        self.status.setText(f"Comparing {a} and {b} against {gt}…")
        self.compare_button.setEnabled(False)
        self.compare_requested.emit(gt, a, b)

    def failed(self, message: str) -> None:
        self.compare_button.setEnabled(True)
        self.status.setText(f"Cannot compare: {message}")

    # ------------------------------------------------------------------ results
    def set_comparison(self, comparison) -> None:
        self.comparison = comparison
        self.compare_button.setEnabled(True)
        gt, a, b = self.fields()
        m = comparison.metrics
        self.metrics.set_results(m.get("a"), m.get("b"), ("A", "B"))
        self.metrics.setToolTip(f"A: {self._field_text(a)}\nB: {self._field_text(b)}")
        totals = {key: sum(c.get(key, 0) for c in comparison.counts.values()) for key, _ in STATUSES}
        self.status.setText(f"A = {self._short(a)}, B = {self._short(b)}. "
                            f"{len(comparison.rows)} ground-truth instances: found by A only {totals['a_only']}, "
                            f"B only {totals['b_only']}, both {totals['both']}, neither {totals['neither']}; "
                            f"class changed {totals['class_changed']}. mAP A {m['a'].get('mAP', 0):.3f}, "
                            f"B {m['b'].get('mAP', 0):.3f}.")
        classes = sorted(comparison.counts)
        self.counts.setRowCount(len(classes) + 1)
        for r, name in enumerate([*classes, None]):
            counts = comparison.counts.get(name) if name is not None else totals
            self.counts.setItem(r, 0, QTableWidgetItem(name if name is not None else "all classes"))
            for c, (key, _) in enumerate(STATUSES, start=1):
                self.counts.setItem(r, c, NumericItem(counts.get(key, 0), str(counts.get(key, 0))))
        self._fill_rows()

    def _fill_rows(self) -> None:
        if self.comparison is None:
            return
        key = self.show_box.currentData()
        self.shown_rows = [r for r in self.comparison.rows if _matches(r, key)]
        names = self._sample_names({r.sample_id for r in self.shown_rows})
        self.rows.setSortingEnabled(False)
        self.rows.setRowCount(len(self.shown_rows))
        found = {"a_only": "A only", "b_only": "B only", "both": "both", "neither": "neither"}
        for i, r in enumerate(self.shown_rows):
            sample = QTableWidgetItem(names.get(r.sample_id, r.sample_id))
            sample.setData(Qt.ItemDataRole.UserRole, i)
            cells = [sample, QTableWidgetItem(r.gt_label or ""),
                     QTableWidgetItem(found.get(r.status, r.status) + (", class changed" if r.class_changed else "")),
                     NumericItem(r.iou_change, "" if r.iou_change is None else f"{r.iou_change:+.3f}"),
                     QTableWidgetItem(r.a_label or ""), NumericItem(r.a_iou), QTableWidgetItem(r.b_label or ""),
                     NumericItem(r.b_iou)]
            for c, item in enumerate(cells):
                self.rows.setItem(i, c, item)
        self.rows.setSortingEnabled(True)
        by_change = key in ("improved", "worse")  # the biggest changes first
        self.rows.sortItems(3 if by_change else 0, Qt.SortOrder.DescendingOrder if key == "improved"
                            else Qt.SortOrder.AscendingOrder)

    def _sample_names(self, ids) -> dict[str, str]:
        names = getattr(self, "sample_names", None)
        return {i: names(i) for i in ids} if names else {}

    # ------------------------------------------------------------------ clicks -> filters
    def _count_clicked(self, row: int, column: int) -> None:
        if self.comparison is None or column == 0:
            return
        key = STATUSES[column - 1][0]
        name = self.counts.item(row, 0).text()
        cls = None if row == self.counts.rowCount() - 1 else name
        rows = [r for r in self.comparison.rows if _matches(r, key) and (cls is None or r.gt_label == cls)]
        self.show_rows(rows, f"{STATUSES[column - 1][1]}: {name}")

    def _row_clicked(self, row: int, _column: int) -> None:
        item = self.rows.item(row, 0)
        if item is None:
            return
        diff = self.shown_rows[item.data(Qt.ItemDataRole.UserRole)]
        self.show_rows([diff], f"{diff.gt_label}: {self.rows.item(row, 2).text()}")
        a, b = self.a_box.currentData(), self.b_box.currentData()

        def side(name, field, label, iou):
            found = f"{label}, IoU {iou:.2f}" if label and iou is not None else (label or "nothing there")
            return f"{name} ({self._short(field)}) {found}"

        self.status.setText(f"Shown: the ground-truth {diff.gt_label}; {side('A', a, diff.a_label, diff.a_iou)}; "
                            f"{side('B', b, diff.b_label, diff.b_iou)}. V colours the canvas by field.")

    def show_rows(self, rows, description: str) -> None:
        samples = list(dict.fromkeys(r.sample_id for r in rows))
        self.filter_requested.emit(samples, _label_ids(rows), description)


def open_compare(window, runs) -> ComparePanel | None:
    """The panel for ``window``'s dataset (a dock): compares on a worker thread; clicks filter the
    window's browser and canvas."""
    if window.dataset is None:
        window.notify("Open a dataset first.")
        return None
    runs.refresh_models()
    gt = GT_FIELD if GT_FIELD in window.label_fields else None
    if runs.compare is None:
        runs.compare = _install(window)
    panel = runs.compare
    panel.set_fields(window.label_fields, runs.models, gt)
    dock = window.docks["Compare models"]
    dock.show()
    dock.raise_()
    if not dock.isFloating() and dock.height() < window.height() // 3:
        window.resizeDocks([dock], [int(window.height() * 0.38)], Qt.Orientation.Vertical)
    return panel


def _install(window) -> ComparePanel:
    panel = ComparePanel([], {}, None)
    panel.paths = {}

    def name_of(sid):
        if not panel.paths and window.dataset is not None:
            panel.paths.update(zip(*window.dataset.values(["id", "filepath"])))
        return panel.paths.get(sid, sid).rsplit("/", 1)[-1]

    def compare(gt_field, a, b):
        from maskreview.core.evaluation.compare import compare_fields

        view = window.dataset.view()
        job = workers.Job(lambda progress: compare_fields(view, gt_field, a, b, progress=progress), "comparing models")
        job.failed.connect(lambda message, kind: panel.failed(message))
        window._start_job(job, panel.set_comparison)

    def show(samples, labels, description):
        window.apply_filter(samples, labels, description)
        if samples:
            window.browser.select_id(samples[0])
        if samples and len(samples) == 1 and len(labels) <= 3:  # one instance: zoom to it
            window.canvas.step_instance(1)

    panel.sample_names = name_of
    panel.compare_requested.connect(compare)
    panel.filter_requested.connect(show)
    window.dataset_changed.connect(lambda _ds: _forget(panel))
    dock = window.add_dock(panel, "Compare models", "bottom")
    if "Evaluation" in window.docks:
        window.tabifyDockWidget(window.docks["Evaluation"], dock)
    return panel


def _forget(panel: ComparePanel) -> None:
    """Another dataset: the comparison shown belongs to the old one."""
    panel.comparison = None
    panel.paths = {}
    for table in (panel.counts, panel.rows, panel.metrics):
        table.setRowCount(0)
    panel.status.setText("Pick two prediction fields and the ground truth.")
