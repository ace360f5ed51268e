"""Evaluation in the window: the Evaluation dock (below the canvas), Evaluate, live TP/FP/FN on the
canvas, drill-downs into the review state, the stored evaluation loaded when a dataset opens.

The canvas's TP/FP/FN and matches always come from matching the sample on show live at the
state's thresholds, never from the values an evaluation stored in the labels: those go stale
with every edit. The dock's figures are marked stale after an edit or a model run.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea

from maskreview.core.fields import DEFAULT_EVAL_KEY, GT_FIELD, PRED_FIELD
from maskreview.gui.actions import ActionSpec
from maskreview.gui.features.menus import add_action, menu

STALE_NOTE = ("Labels changed since this evaluation: its figures are as evaluated "
              "(the canvas's TP/FP/FN are live). Evaluate again to update them.")

GT, PRED = GT_FIELD, PRED_FIELD


class EvaluationFeature:
    def __init__(self, window, state):
        from maskreview.gui.panels.evaluation import EvaluationDock

        self.window, self.state = window, state
        self.dock = dock = EvaluationDock(window, state)
        self._load_job = None
        self._loaded = None  # the results loaded with a dataset (kept on disk already)
        self._fresh_note = None  # the note the stale one replaced (an undo back to the evaluated labels restores it)
        scroll = QScrollArea()  # the panels' minimum width would otherwise widen the whole right column
        scroll.setWidgetResizable(True)
        scroll.setWidget(dock)
        # below the canvas, between the side columns: the tables and plots want width
        window.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        window.add_dock(scroll, "Evaluation", "bottom").hide()
        window.resizeDocks([window.docks["Overlays"]], [380], Qt.Orientation.Horizontal)
        dock.filter_requested.connect(state.drill_down)
        dock.results_changed.connect(self._results_changed)
        dock.evaluation_failed.connect(window.notify)
        dock.evaluate_requested.connect(self.evaluate)
        dock.sample_outcomes_changed.connect(self._recolour)
        window.sample_changed.connect(self._match_current)
        state.events.dataset.connect(self._dataset_opened)
        window.undo_stack.cleanChanged.connect(self._labels_changed)
        add_action(window, ActionSpec("evaluate", "&Evaluate predictions…", ("Ctrl+Shift+E",), "Evaluate",
                                      tip="COCO evaluation of predictions against ground truth (whole dataset)"),
                   self.evaluate, menu(window, "&Evaluate"))

    # ------------------------------------------------------------------ running
    def evaluate(self, iou_type: str = "segm", eval_key: str = DEFAULT_EVAL_KEY):
        """Evaluate the whole dataset's predictions; returns the job (None when there is nothing to do)."""
        window = self.window
        if window.dataset is None:
            window.notify("Open a dataset first.")
            return None
        runs = getattr(window, "model_runs", None)
        pred = runs.current_field() if runs is not None else PRED  # the chosen model's
        if pred not in window.label_fields or GT not in window.label_fields:
            window.notify(f"Evaluation needs both '{GT}' and '{pred}' (Model ▸ Run model on the dataset).")
            return None
        self.show_dock()
        self._mark_evaluated()
        job = self.dock.start_evaluation(window.dataset.view(), GT, pred, iou_type, eval_key)
        window.progress.track(job)  # the status bar's bar, ETA and Cancel (#17.4: a whole 100k-sample set)
        return job

    def show_dock(self) -> None:
        window, dock = self.window, self.window.docks["Evaluation"]
        dock.show()
        dock.raise_()
        if not dock.isFloating() and dock.height() < window.height() // 3:  # room for the tables and plots
            window.resizeDocks([dock], [int(window.height() * 0.4)], Qt.Orientation.Vertical)

    def _results_changed(self, results) -> None:
        self._mark_evaluated()
        if results is not self._loaded and results.eval_key is not None and self.window.dataset is not None:
            self._keep(self.window.dataset, results)
        self.window.set_eval_key(results.eval_key)
        self._match_current(self.window.current_sample_id)

    # ------------------------------------------------------------------ a stored evaluation
    def _dataset_opened(self, dataset, _old=None) -> None:
        """A dataset with a stored evaluation: computed again from its labels as they are now, on a
        worker (the stored per-label values may predate edits made since)."""
        from maskreview.core.review.evaluation import load_stored, stored_evaluation
        from maskreview.gui import workers

        stored = stored_evaluation(dataset)
        if stored is None:
            return
        key, config = stored
        self.state.evaluation_note = f"loading the stored evaluation '{key}'…"
        job = workers.Job(lambda progress: load_stored(dataset, key, config, progress), "loading evaluation")
        self._load_job = job
        self._mark_evaluated()

        def loaded(results, ds=dataset, k=key):
            if self.state.dataset is not ds or self.state.evaluation is not None:
                return  # another dataset, or an evaluation run meanwhile
            how = ("as computed when last opened: no sample has changed since" if results.evaluation is None
                   else "computed from the labels as they are now")  # None: read from the kept file
            self.state.evaluation_note = f"stored evaluation '{k}' ({config.pred_field} vs {config.gt_field}), {how}"
            self._loaded = results  # loaded or kept already: not written again
            self.dock.set_results(results)

        self.window._start_job(job, loaded, track=False)

    def _keep(self, dataset, results) -> None:
        """Keep a finished evaluation on disk (``core.review.stored``, on a worker), so that
        reopening the dataset loads it while its labels stay as they are now (#17.4)."""
        from maskreview.core.review import stored
        from maskreview.gui import workers

        self.window._start_job(workers.Job(lambda progress: stored.keep(dataset, results), "keeping evaluation"),
                               track=False)

    def _mark_evaluated(self) -> None:
        """The labels as they are now are the evaluated ones: the undo stack's clean state marks
        them (an undo and a new edit leave the same index with other labels; the clean state is lost then)."""
        self.window.undo_stack.setClean()
        self._fresh_note = None

    def _labels_changed(self, clean: bool) -> None:
        if self.state.evaluation is None:
            return
        if clean:  # undone or redone back to the evaluated labels
            if self._fresh_note is not None:
                self.state.evaluation_note, self._fresh_note = self._fresh_note, None
        elif self._fresh_note is None:
            self._fresh_note = self.state.evaluation_note
            self.state.evaluation_note = STALE_NOTE

    # ------------------------------------------------------------------ the sample on show
    def _match_current(self, sample_id) -> None:
        window = self.window
        if sample_id is None or window.dataset is None or self.dock.results is None:
            return
        self.dock.set_current_sample(window.dataset[sample_id])

    def _recolour(self, sample_id: str, outcomes: dict) -> None:
        canvas = self.window.canvas
        data = canvas.data
        if data is None or data.sample_id != sample_id:
            return
        matches = self.dock.sample_matches()
        for insts in data.fields.values():
            for inst in insts:
                if inst.id in outcomes:
                    inst.eval = outcomes[inst.id]
                    inst.match_id, inst.eval_iou = matches.get(inst.id, (None, None))
        canvas.invalidate()  # the Selection panel follows (overlays_changed)
