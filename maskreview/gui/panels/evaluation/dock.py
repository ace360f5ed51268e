"""The evaluation dock: runs an evaluation on a worker, shows every panel, and speaks in ids.

It observes the review state (``core.review``): the evaluation is ``state.evaluation``, the ONE
confidence and IoU threshold are ``state.thresholds`` (the canvas's too), and its live counts,
confusion matrix, failure groups and sort orders are those at these thresholds, so a drill-down
shows exactly the labels it counts. mAP and the AP columns are COCO's, over every score.

Signals (for the window's evaluation feature, ``gui.features.evaluation``):

- ``filter_requested(sample_ids, label_ids, description)``: show exactly these (None, None: all);
- ``sort_requested(sample_ids)``: the browser's new order (also set in ``state.filters``);
- ``thresholds_changed(conf, iou)`` and ``sample_outcomes_changed(sample_id, {label id: outcome})``
  after ``set_current_sample(sample)``: the canvas recolours TP/FP/FN at once;
- ``results_changed(results)`` after an evaluation; ``start_evaluation(view, gt, pred, ...)``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from maskreview.core.fields import DEFAULT_EVAL_KEY, GT_FIELD, PRED_FIELD
from maskreview.core.review.evaluation import SORTS as SORT_KEYS
from maskreview.gui.panels.evaluation.widgets import ClassTable, ConfusionMatrix, GroupsTable, PRCurves, SummaryWidget

SORTS = (("Sort browser…", None),) + tuple((text, key) for key, text in SORT_KEYS)


class EvaluationDock(QWidget):
    filter_requested = Signal(object, object, str)
    sort_requested = Signal(list)
    thresholds_changed = Signal(float, float)
    sample_outcomes_changed = Signal(str, dict)
    results_changed = Signal(object)
    evaluate_requested = Signal()
    evaluation_failed = Signal(str)
    rematched = Signal(object)  # analysis.Rematch for the dataset at the current thresholds

    def __init__(self, parent=None, state=None):
        super().__init__(parent)
        from maskreview.core.review import ReviewState

        self.state = state if state is not None else ReviewState()
        self.confusion = None
        self.view = None
        self._job = None
        self._rematch_job = None
        self._rematch_pending = False
        self._matcher = None
        self._matcher_id = None
        self.sample_match = None  # core.evaluation.matching.Match of the current sample at the thresholds

        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("COCO evaluation of the predictions against the ground truth (pycocotools)")
        self.evaluate_button.clicked.connect(self._evaluate_clicked)
        self.sort_box = QComboBox()
        for text, _ in SORTS:
            self.sort_box.addItem(text)
        self.sort_box.currentIndexChanged.connect(self._sort_changed)
        self.clear_button = QPushButton("Show all")
        self.clear_button.setToolTip("Clear every filter and the sort order (the current sample stays)")
        self.clear_button.clicked.connect(self.state.show_all)
        self.at_zero_button = QPushButton("Count at 0")
        self.at_zero_button.setToolTip("Confidence 0: count every prediction, as COCO's mAP does (the canvas too)")
        self.at_zero_button.clicked.connect(lambda: setattr(self.state.thresholds, "confidence", 0.0))
        self.status = QLabel("No evaluation yet")
        self.status.setWordWrap(True)
        self.thresholds_note = QLabel()
        self.thresholds_note.setWordWrap(True)
        self.thresholds_note.setStyleSheet("color: gray")

        self.conf_slider, self.conf_label = self._slider(0, 100, "confidence ≥", "confidence")
        self.iou_slider, self.iou_label = self._slider(5, 95, "IoU ≥", "iou")
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
        for w in (self.conf_label, self.conf_slider, self.iou_label, self.iou_slider, self.at_zero_button):
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
        layout.addWidget(self.thresholds_note)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)

        th = self.state.thresholds
        th.events.confidence.connect(lambda new, old: self._threshold_changed(self.conf_slider, new))
        th.events.iou.connect(lambda new, old: self._threshold_changed(self.iou_slider, new))
        self.state.events.evaluation.connect(self._evaluation_changed)
        self.state.events.evaluation_note.connect(lambda new, old: self._show_status())
        self.state.filters.events.order_name.connect(self._order_changed)
        self.state.filters.events.sample_ids.connect(self._restrictions_changed)
        self._threshold_changed(self.conf_slider, th.confidence, moved=False)
        self._threshold_changed(self.iou_slider, th.iou, moved=False)

    def _slider(self, lo: int, hi: int, text: str, attr: str):
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(lo, hi)
        label = QLabel(text)
        label.setMinimumWidth(110)
        label.setProperty("caption", text)
        slider.valueChanged.connect(lambda v: setattr(self.state.thresholds, attr, v / 100))
        return slider, label

    # ------------------------------------------------------------------ thresholds (the state's)
    @property
    def results(self):
        return self.state.evaluation

    @property
    def conf_thresh(self) -> float:
        return self.state.thresholds.confidence

    @property
    def iou_thresh(self) -> float:
        return self.state.thresholds.iou

    def set_thresholds(self, conf: float, iou: float) -> None:
        self.state.thresholds.confidence = conf
        self.state.thresholds.iou = iou

    def _threshold_changed(self, slider: QSlider, value: float, moved: bool = True) -> None:
        label = self.conf_label if slider is self.conf_slider else self.iou_label
        label.setText(f"{label.property('caption')} {value:.2f}")
        slider.blockSignals(True)
        slider.setValue(int(round(value * 100)))
        slider.blockSignals(False)
        self._note_thresholds()
        if moved:
            self.thresholds_changed.emit(self.conf_thresh, self.iou_thresh)
            self._emit_sample_outcomes()
            self._debounce.start()

    def _note_thresholds(self) -> None:
        self.thresholds_note.setText(
            f"TP, FP, FN, precision, recall, F1, the confusion matrix, failure groups and sort orders: at "
            f"confidence ≥ {self.conf_thresh:.2f} and IoU ≥ {self.iou_thresh:.2f}, as the canvas shows. "
            "mAP and AP: COCO's, over every score (“Count at 0” counts every prediction too).")

    # ------------------------------------------------------------------ results
    def set_results(self, results) -> None:
        """Show ``results`` (the state's evaluation from now on)."""
        if results is self.state.evaluation:
            self._evaluation_changed(results, results)
        else:
            self.state.evaluation = results

    def _evaluation_changed(self, results, _old=None) -> None:
        self.confusion = None
        self.state.rematch = None  # that of the evaluation before
        if results is None:
            self.summary.set_summary({}, "")
            self.class_table.set_rows([])
            self.pr.set_results(None)
            self.confusion_view.clear()
            self.groups.clear()
            self._matcher = self._matcher_id = self.sample_match = None
            self._show_status()
            return
        from maskreview.core.evaluation import analysis

        self.summary.set_summary(results.summary, caption=(
            f"{results.pred_field} vs {results.gt_field}, {results.iou_type}, {len(results.sample_ids)} samples"
            + (f", stored as '{results.eval_key}'" if results.eval_key else "")
            + "; mAP and AP over every score"))
        self.class_table.set_rows(analysis.class_table(results))
        self.pr.set_results(results)
        self._show_status()
        if self.state.thresholds.iou != results.iou_thresh:
            self.state.thresholds.iou = results.iou_thresh  # re-matches through the slider's observer
        self._rematch_dataset()
        self.results_changed.emit(results)

    def _show_status(self) -> None:
        results = self.state.evaluation
        if results is None:
            self.status.setText(self.state.evaluation_note or "No evaluation yet")
            return
        self.status.setText("; ".join([*results.warnings, *([self.state.evaluation_note]
                                                              if self.state.evaluation_note else [])]))

    def _order_changed(self, name: str, _old=None) -> None:
        """The browser's order changed elsewhere (Clear filters, a saved view): the box says so."""
        index = next((i for i, (text, key) in enumerate(SORTS) if key is not None and text == name), 0)
        if index != self.sort_box.currentIndex():
            self.sort_box.blockSignals(True)
            self.sort_box.setCurrentIndex(index)
            self.sort_box.blockSignals(False)

    def _restrictions_changed(self, restrictions, _old=None) -> None:
        """The drill-down lifted elsewhere (Clear filters, Show all): no cell or group stays chosen."""
        if "evaluation" not in restrictions:
            for view in (self.confusion_view, self.groups):
                view.clearSelection()
                view.setCurrentItem(None)

    def _sort_changed(self, index: int) -> None:
        by = SORTS[index][1]
        if by is not None and self.results is not None:
            self._sort(by)

    def _sort(self, by: str) -> None:
        from maskreview.core.review.evaluation import at_thresholds, sample_order

        order = sample_order(at_thresholds(self.results, self.state.rematch), by)
        self.state.filters.sort(order, next(t for t, k in SORTS if k == by))
        self.sort_requested.emit(order)

    # ------------------------------------------------------------------ running
    def _evaluate_clicked(self) -> None:
        """In the window the evaluation feature runs it (the fields of the model chosen now, the
        dataset as it is now, the status bar's progress and Cancel); a dock on its own reruns its
        last view."""
        from PySide6.QtCore import SIGNAL

        if self.view is None or self.receivers(SIGNAL("evaluate_requested()")):
            self.evaluate_requested.emit()
        else:
            self.start_evaluation(self.view, *self._fields)

    def start_evaluation(self, view, gt_field: str = GT_FIELD, pred_field: str = PRED_FIELD,
                         iou_type: str = "segm", eval_key: str | None = DEFAULT_EVAL_KEY):
        """Evaluate on a worker thread; the panels fill when it is done. Returns the job; while
        one runs (or is still cancelling: it removes what it wrote) that one, as two runs under
        one key would write over each other's values."""
        from maskreview.core.evaluation import evaluate_and_store
        from maskreview.gui.workers import Job

        if self._job is not None and self._job.isRunning():
            return self._job

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
        self.state.evaluation_note = ""
        self.set_results(results)

    def _failed(self, message: str, _kind: str) -> None:
        self.evaluate_button.setEnabled(True)
        self.status.setText(message)
        self.evaluation_failed.emit(message)

    def _rematch_dataset(self) -> None:
        """Dataset figures, confusion and groups at the current thresholds, on a worker (latest wins)."""
        from maskreview.gui.workers import Job

        if self.results is None:
            return
        self.class_table.pending_counts()  # figures at other thresholds never stand under these
        self.summary.set_totals({})
        if self._rematch_job is not None and self._rematch_job.isRunning():
            self._rematch_pending = True
            return
        results, conf, iou = self.results, self.conf_thresh, self.iou_thresh
        job = self._rematch_job = Job(lambda progress: _at_thresholds(results, conf, iou, progress), "re-matching",
                                      self)
        job.succeeded.connect(lambda out, r=results: self._rematched(r, *out))
        job.start()

    def _rematched(self, results, rematch, confusion, groups, tide_report) -> None:
        if results is self.results and rematch.conf_thresh == self.conf_thresh and rematch.iou_thresh == self.iou_thresh:
            self.state.rematch = rematch
            self.summary.set_totals(rematch.totals)
            self.class_table.update_counts(rematch.per_class)
            self.confusion = confusion
            self.confusion_view.set_confusion(confusion)
            self.groups.set_groups(groups, tide_report)
            order_name = self.state.filters.order_name
            by = next((k for t, k in SORTS if k is not None and t == order_name), None)
            if by is not None:  # the browser's evaluation order follows the thresholds
                self._sort(by)
            self.rematched.emit(rematch)
        if self._rematch_pending:
            self._rematch_pending = False
            self._rematch_dataset()

    # ------------------------------------------------------------------ current sample
    def set_current_sample(self, sample, iou_type: str | None = None) -> dict:
        """Match one sample live at the current thresholds; returns and emits its outcomes."""
        from maskreview.core.evaluation.matching import SampleMatcher

        gt_field, pred_field = (self.results.gt_field, self.results.pred_field) if self.results else \
            (GT_FIELD, PRED_FIELD)
        iou_type = iou_type or (self.results.iou_type if self.results else "segm")
        if sample is None or not sample.has_field(gt_field) or not sample.has_field(pred_field):
            self._matcher = self._matcher_id = self.sample_match = None
            return {}
        meta = sample.metadata
        self._matcher = SampleMatcher(sample[gt_field], sample[pred_field], int(meta.height), int(meta.width),
                                      iou_type)
        self._matcher_id = sample.id
        return self._emit_sample_outcomes()

    def _emit_sample_outcomes(self) -> dict:
        if self._matcher is None:
            return {}
        m = self.sample_match = self._matcher.match(self.conf_thresh, self.iou_thresh)
        outcomes = {**dict(zip(self._matcher.gt_ids, m.gt_outcome)), **dict(zip(self._matcher.pred_ids, m.pred_outcome))}
        self.sample_outcomes_changed.emit(self._matcher_id, outcomes)
        return outcomes

    def sample_matches(self) -> dict[str, tuple[str | None, float | None]]:
        """The current sample's matches at the thresholds: label id -> (matched label id, mask IoU)."""
        m, matcher = self.sample_match, self._matcher
        if m is None or matcher is None:
            return {}
        out = {}
        for p, g in enumerate(m.pred_match.tolist()):
            if g >= 0:
                iou = float(m.pred_iou[p])
                out[matcher.pred_ids[p]] = (matcher.gt_ids[g], iou)
                out[matcher.gt_ids[g]] = (matcher.pred_ids[p], iou)
        return out


def _at_thresholds(results, conf: float, iou: float, progress):
    """The re-match and what is drawn from it: confusion matrix, failure groups (the TIDE report
    stays COCO's, over every score: it explains the mAP)."""
    from maskreview.core.evaluation import analysis, tide
    from maskreview.core.review.evaluation import at_thresholds

    rematch = analysis.rematch_dataset(results, conf, iou, progress)
    shown = at_thresholds(results, rematch)
    tide_report = getattr(results, "_tide_report", None)
    if tide_report is None:
        tide_report = results._tide_report = tide.tide(results)
    return rematch, analysis.confusion(shown), analysis.failure_groups(shown), tide_report
