"""The evaluation dock: runs an evaluation on a worker, shows every panel, and speaks in ids.

Hooks for the main window (the dock knows nothing of it):

- ``filter_requested(sample_ids, label_ids, description)``: show exactly these (None, None: all);
- ``sort_requested(sample_ids)``: order the browser (most FP, most FN or worst F1 first);
- ``thresholds_changed(conf, iou)`` and ``sample_outcomes_changed(sample_id, {label id: outcome})``
  after ``set_current_sample(sample)``: the canvas recolours TP/FP/FN at once;
- ``results_changed(results)`` after an evaluation; ``start_evaluation(view, gt, pred, ...)``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from maskreview.gui.panels.evaluation.widgets import ClassTable, ConfusionMatrix, GroupsTable, PRCurves, SummaryWidget

SORTS = (("Sort browser…", None), ("most false positives", "fp"), ("most false negatives", "fn"),
         ("worst F1 first", "f1"))


class EvaluationDock(QWidget):
    filter_requested = Signal(object, object, str)
    sort_requested = Signal(list)
    thresholds_changed = Signal(float, float)
    sample_outcomes_changed = Signal(str, dict)
    results_changed = Signal(object)
    evaluate_requested = Signal()
    evaluation_failed = Signal(str)
    rematched = Signal(object)  # analysis.Rematch for the dataset at the current thresholds

    def __init__(self, parent=None):
        super().__init__(parent)
        self.results = None
        self.confusion = None
        self.view = None
        self._job = None
        self._rematch_job = None
        self._rematch_pending = False
        self._matcher = None
        self._matcher_id = None

        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("COCO evaluation of the predictions against the ground truth (pycocotools)")
        self.evaluate_button.clicked.connect(self._evaluate_clicked)
        self.sort_box = QComboBox()
        for text, _ in SORTS:
            self.sort_box.addItem(text)
        self.sort_box.currentIndexChanged.connect(self._sort_changed)
        self.clear_button = QPushButton("Show all")
        self.clear_button.clicked.connect(lambda: self.filter_requested.emit(None, None, "all"))
        self.status = QLabel("No evaluation yet")
        self.status.setWordWrap(True)

        self.conf_slider, self.conf_label = self._slider(0, 100, 0, "confidence ≥")
        self.iou_slider, self.iou_label = self._slider(5, 95, 50, "IoU ≥")
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(self._rematch_dataset)

        self.summary = SummaryWidget()
        self.class_table = ClassTable()
        self.pr = PRCurves()
        self.confusion_view = ConfusionMatrix()
        self.groups = GroupsTable()
        self.class_table.class_clicked.connect(self.pr.highlight)
        self.confusion_view.cell_selected.connect(self.filter_requested)
        self.groups.group_selected.connect(self.filter_requested)

        top = QHBoxLayout()
        top.addWidget(self.evaluate_button)
        top.addWidget(self.sort_box)
        top.addWidget(self.clear_button)
        top.addStretch(1)
        sliders = QHBoxLayout()
        for w in (self.conf_label, self.conf_slider, self.iou_label, self.iou_slider):
            sliders.addWidget(w)
        first = QSplitter(Qt.Orientation.Vertical)
        first.addWidget(self.summary)
        first.addWidget(self.class_table)
        self.tabs = QTabWidget()
        self.tabs.addTab(first, "Summary")
        self.tabs.addTab(self.pr, "PR curves")
        self.tabs.addTab(self.confusion_view, "Confusion")
        self.tabs.addTab(self.groups, "Failures")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addLayout(sliders)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)

    def _slider(self, lo: int, hi: int, value: int, text: str):
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(lo, hi)
        slider.setValue(value)
        label = QLabel(f"{text} {value / 100:.2f}")
        label.setMinimumWidth(110)
        slider.valueChanged.connect(lambda v: (label.setText(f"{text} {v / 100:.2f}"), self._thresholds_moved()))
        return slider, label

    # ------------------------------------------------------------------ thresholds
    @property
    def conf_thresh(self) -> float:
        return self.conf_slider.value() / 100

    @property
    def iou_thresh(self) -> float:
        return self.iou_slider.value() / 100

    def set_thresholds(self, conf: float, iou: float) -> None:
        self.conf_slider.setValue(int(round(conf * 100)))
        self.iou_slider.setValue(int(round(iou * 100)))

    def _thresholds_moved(self) -> None:
        self.thresholds_changed.emit(self.conf_thresh, self.iou_thresh)
        self._emit_sample_outcomes()
        self._debounce.start()

    # ------------------------------------------------------------------ results
    def set_results(self, results) -> None:
        from maskreview.core.evaluation import analysis, tide

        self.results = results
        self.summary.set_summary(results.summary, caption=(
            f"{results.pred_field} vs {results.gt_field}, {results.iou_type}, {len(results.sample_ids)} samples"
            + (f", stored as '{results.eval_key}'" if results.eval_key else "")))
        self.class_table.set_rows(analysis.class_table(results))
        self.pr.set_results(results)
        self.confusion = analysis.confusion(results)
        self.confusion_view.set_confusion(self.confusion)
        self.groups.set_groups(analysis.failure_groups(results), tide.tide(results))
        self.status.setText("; ".join(results.warnings) or "")
        self.set_thresholds(0.0, results.iou_thresh)
        self._rematch_dataset()
        self.results_changed.emit(results)

    def _sort_changed(self, index: int) -> None:
        from maskreview.core.evaluation.analysis import sample_order

        by = SORTS[index][1]
        if by is not None and self.results is not None:
            self.sort_requested.emit(sample_order(self.results, by))

    # ------------------------------------------------------------------ running
    def _evaluate_clicked(self) -> None:
        if self.view is None:
            self.evaluate_requested.emit()
        else:
            self.start_evaluation(self.view, *self._fields)

    def start_evaluation(self, view, gt_field: str = "ground_truth", pred_field: str = "predictions",
                         iou_type: str = "segm", eval_key: str | None = "eval"):
        """Evaluate on a worker thread; the panels fill when it is done. Returns the job."""
        from maskreview.core.evaluation import evaluate_and_store
        from maskreview.gui.workers import Job

        self.view, self._fields = view, (gt_field, pred_field, iou_type, eval_key)
        self.evaluate_button.setEnabled(False)
        self.status.setText("evaluating…")
        iou = self.iou_thresh

        def work(progress):
            return evaluate_and_store(view, gt_field, pred_field, iou_type, eval_key=eval_key, iou_thresh=iou,
                                      progress=progress)

        job = self._job = Job(work, "evaluation", self)
        job.succeeded.connect(self._evaluated)
        job.failed.connect(self._failed)
        job.start()
        return job

    def _evaluated(self, results) -> None:
        self.evaluate_button.setEnabled(True)
        self.set_results(results)

    def _failed(self, message: str, _kind: str) -> None:
        self.evaluate_button.setEnabled(True)
        self.status.setText(message)
        self.evaluation_failed.emit(message)

    def _rematch_dataset(self) -> None:
        """Dataset figures at the current thresholds, on a worker (latest request wins)."""
        from maskreview.core.evaluation.analysis import rematch_dataset
        from maskreview.gui.workers import Job

        if self.results is None:
            return
        if self._rematch_job is not None and self._rematch_job.isRunning():
            self._rematch_pending = True
            return
        results, conf, iou = self.results, self.conf_thresh, self.iou_thresh
        job = self._rematch_job = Job(lambda progress: rematch_dataset(results, conf, iou, progress), "re-matching", self)
        job.succeeded.connect(self._rematched)
        job.start()

    def _rematched(self, rematch) -> None:
        if rematch.conf_thresh == self.conf_thresh and rematch.iou_thresh == self.iou_thresh:
            self.summary.set_totals(rematch.totals)
            self.class_table.update_counts(rematch.per_class)
            self.rematched.emit(rematch)
        if self._rematch_pending:
            self._rematch_pending = False
            self._rematch_dataset()

    # ------------------------------------------------------------------ current sample
    def set_current_sample(self, sample, iou_type: str | None = None) -> dict:
        """Match one sample live at the current thresholds; returns and emits its outcomes."""
        from maskreview.core.evaluation.matching import SampleMatcher

        gt_field, pred_field = (self.results.gt_field, self.results.pred_field) if self.results else \
            ("ground_truth", "predictions")
        iou_type = iou_type or (self.results.iou_type if self.results else "segm")
        if sample is None or not sample.has_field(gt_field) or not sample.has_field(pred_field):
            self._matcher = self._matcher_id = None
            return {}
        meta = sample.metadata
        self._matcher = SampleMatcher(sample[gt_field], sample[pred_field], int(meta.height), int(meta.width),
                                      iou_type)
        self._matcher_id = sample.id
        return self._emit_sample_outcomes()

    def _emit_sample_outcomes(self) -> dict:
        if self._matcher is None:
            return {}
        outcomes = self._matcher.outcomes_by_id(self.conf_thresh, self.iou_thresh)
        self.sample_outcomes_changed.emit(self._matcher_id, outcomes)
        return outcomes
