"""Model runs in the window: the chosen model (remembered per dataset), one field per model, and
each run one entry in the undo history.

:class:`ModelRuns` is created by ``gui.integration`` with the window and is what
``MainWindow.run_inference`` calls. A run:

- goes to the model worker process (``core.model.worker``, through ``window.model_worker``): it loads
  the model once and keeps it, writes the results into the database itself and reports progress,
  so the window never imports torch; if it crashes, the window says so and it is restarted;
- loads the model first; a model that fails to load changes nothing and gets a dialog in the
  GUI's words (:mod:`maskreview.gui.dialogs.model_failure`), with a "Choose weights file…" button;
- writes the model's own field (``core.provenance.propose_field``) unless the user picked one;
- snapshots what that field held for the samples it will predict (``core.model.field_snapshot``), so
  undo restores it and redo writes the run's result again;
- keeps reviewer work (``core.inference.run_inference`` keeps reviewed labels and deletions).

The automatic run (a dataset opens, an image is added) uses the model remembered for the
dataset (``core.autorun``), predicts only samples with no output of that model, and never
writes another model's field. The demo dataset falls back to the demo model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QUndoCommand

from maskreview.core.errors import MaskreviewError
from maskreview.core.fields import RUN_KEY
from maskreview.core.store import dataset_of
from maskreview.gui import workers


@dataclass
class RunOutcome:
    field: str
    report: object | None  # InferenceReport; None: nothing to predict (up to date)
    model: str
    count: int = 0


@dataclass
class LoadFailure:
    """A model that could not be built (the job 'succeeds' with this, so the window's generic
    error box does not show the command-line wording)."""

    error: MaskreviewError
    model: str
    weights: str | None
    rerun: object = None  # runs the same again (set on the GUI thread)


@dataclass
class FieldTaken:
    """The field the user picked holds another model's output: the run did not start."""

    error: MaskreviewError  # a core.provenance.FieldTakenError (.field, .free_field, .holder)
    rerun: object = None  # runs the same again (set on the GUI thread)


class ModelRunCommand(QUndoCommand):
    """A finished run: undo writes back what the field held before, redo what the run wrote."""

    def __init__(self, runs: ModelRuns, field: str, before, after, text: str):
        super().__init__(text)
        self.runs, self.field, self.before, self.after = runs, field, before, after
        self._first = True  # pushing calls redo(); the run has written already

    def redo(self) -> None:
        if self._first:
            self._first = False
            return
        self.runs.restore(self.field, self.after)

    def undo(self) -> None:
        self.runs.restore(self.field, self.before)


class ModelRuns(QObject):
    run_done = Signal(object)  # RunOutcome
    load_failed = Signal(object)  # LoadFailure
    worker_crashed = Signal(object)  # a core.model.worker_client.WorkerCrashed (the worker is restarted already)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.weights: str | None = None  # a weights file chosen for the model (None: the model's own)
        self.trust_checkpoint = False
        self.field: str | None = None  # the field the user picked (None: the model's own)
        self.last_outcome: RunOutcome | None = None
        self.failure_dialog = None
        self.picker = None  # the model picker last opened (gui.dialogs.model_picker)
        self.finetune = None  # the fine-tune dialog last opened (gui.dialogs.finetune)
        self.compare = None  # the compare dialog last opened (gui.dialogs.compare)
        self.models: dict[str, dict] = {}  # prediction field -> the record of the model that wrote it
        self._last_good = None  # (model, weights, field) of the last run that worked
        self._stored_shape = (None, None)  # (dataset, store.dataset_doc.stored_shape) as last refreshed
        self._models_behind = False  # a field was added without naming its model (add_field)
        window.dataset_changed.connect(self._dataset_opened)
        window.installEventFilter(self)  # the window closing stops a fine-tune process
        self.worker_crashed.connect(self._worker_crashed)
        window.model_worker.on_crash.append(self.worker_crashed.emit)  # called on the worker's reader thread

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.window and event.type() == QEvent.Type.Close:
            if self.finetune is not None:
                self.finetune.stop()
            if self.worker_crashed.emit in self.window.model_worker.on_crash:
                self.window.model_worker.on_crash.remove(self.worker_crashed.emit)
        return False

    def _worker_crashed(self, error) -> None:
        """The worker died; a job waiting on it says so itself (its failure names what it was doing)."""
        w = self.window
        if w.inference is None:
            w.notify(workers.crash_message(error))
        else:
            w.statusBar().showMessage(workers.crash_message(error, "the model run"), 15000)

    # ------------------------------------------------------------------ the chosen model
    def choice(self):
        from maskreview.core.model.autorun import ModelChoice

        w = self.window
        return ModelChoice(model=w.model_name, weights=self.weights, settings=replace(w.engine_settings),
                           field=self.field)

    def choose(self, model: str, weights: str | None = None, field: str | None = None,
               trust_checkpoint: bool = False) -> None:
        """Make ``model`` the window's model and remember it for the open dataset."""
        w = self.window
        same = (model, weights) == (w.model_name, self.weights)
        self.trust_checkpoint = trust_checkpoint or (same and self.trust_checkpoint)  # trust is per file, per session
        w.model_name, self.weights, self.field = model, weights, field
        w.settings.set_value("model/name", model)
        self._remember()

    def _remember(self, field: str | None = None) -> None:
        from maskreview.core.model.autorun import remember_model

        if self.window.dataset is not None:
            choice = self.choice()
            choice.field = choice.field or field
            try:
                remember_model(self.window.dataset, choice)
            except MaskreviewError as exc:
                self.window.statusBar().showMessage(f"cannot remember the model for this dataset: {exc}", 8000)

    def _dataset_opened(self, dataset) -> None:
        from maskreview.core.model.autorun import chosen_model
        from maskreview.core.demo import DEMO_DATASET

        choice = chosen_model(dataset)
        w = self.window
        self._last_good = None
        self.refresh_models()
        if self._stored_shape[0] is not dataset:  # the document as opened: a run's records are then cheap to take in
            from maskreview.core.store.dataset_doc import stored_shape

            self._stored_shape = (dataset, stored_shape(dataset, as_loaded=True))
        if choice is not None:
            w.model_name, self.weights, self.field = choice.model, choice.weights, choice.field
            w.engine_settings = replace(choice.settings)
        elif dataset.name == DEMO_DATASET:
            w.model_name, self.weights, self.field = "demo", None, None
        else:
            return  # no model chosen for this dataset yet: nothing runs by itself
        if len(dataset):
            self.run("dataset", automatic=True)

    # ------------------------------------------------------------------ running
    def run(self, scope: str = "dataset", overwrite: bool | None = None, model: str | None = None,
            skip_if_current: bool = False, automatic: bool = False, sample_ids: list[str] | None = None):
        """Run the chosen model (or ``model``) over ``"dataset"``, ``"selection"``, ``"current"`` or
        ``sample_ids`` in the background; ``automatic``/``skip_if_current``: only samples with no
        output of this model."""
        w = self.window
        if w.dataset is None:
            w.notify("Open a dataset first (or drop an image to try the model on it).")
            return None
        if w.inference is not None:
            w.statusBar().showMessage("Inference is already running (Esc cancels it)", 5000)
            return None
        if sample_ids is not None:
            ids = list(sample_ids)
        elif scope == "current":
            ids = [w.current_sample_id] if w.current_sample_id else []
        elif scope == "selection":
            ids = w.browser.selected_ids()
        else:
            ids = None
        if ids is not None and not ids:
            w.statusBar().showMessage("Nothing selected to run the model on", 5000)
            return None
        view = w.dataset.select(ids, ordered=True) if ids is not None else w.dataset.view()
        only_missing = automatic or skip_if_current
        overwrite = (scope == "current" if overwrite is None else overwrite) and not only_missing
        model = model or w.model_name
        from maskreview.gui.panels.fields import short_model_name

        job = workers.Job(None, f"inference ({short_model_name({'model': model})})")
        job.model_label = short_model_name({"model": model})
        job.fn = self._job_fn(job, view, ids, model, self.weights if model == w.model_name else None,
                              replace(w.engine_settings), self.field if model == w.model_name else None,
                              overwrite, only_missing)
        job.field, job.written, job.partial, job.read_versions = None, set(), None, {}
        job.rerun = lambda: self.run(scope, overwrite, model, skip_if_current, automatic, sample_ids)
        job.progress.emitter.written.connect(lambda ids, j=job: self._written(j, ids))
        job.failed.connect(lambda message, kind, j=job: (self._release(j), self._push(j, stopped=True)))
        job.finished.connect(lambda j=job: self._finished(j))
        w.inference = job
        return w._start_job(job, lambda result, j=job: self._succeeded(j, result))

    def _job_fn(self, job, view, ids, model, weights, settings, field, overwrite, only_missing):
        """The run goes to the model worker (``core.model.worker``), which loads the model, writes
        the results into the database itself and reports progress; this thread only waits."""
        client, trust = self.window.model_worker, self.trust_checkpoint
        remember = model == self.window.model_name  # the worker remembers it (the save off this thread)

        def on_event(message):
            if message["event"] == "target":
                job.field = message["field"]
            elif message["event"] == "written":  # the versions read here, not on the GUI thread (a mongod
                edits = self.window.edits  # round trip while the run writes: up to 20 ms, #17's stall row)
                if edits is not None:
                    job.read_versions.update(edits.session.read_versions(message["ids"]))
                job.progress.emitter.written.emit(message["ids"])
            elif message["event"] == "snapshots":  # a run stopped halfway is undoable too
                job.partial = (message["field"], message["before"], message["after"])

        def fn(progress):
            if only_missing and autorun_is_current(view, model, field, weights, settings):
                return RunOutcome(field, None, model)  # no model load
            try:
                result = client.call("run", progress, on_event, dataset=dataset_of(view).name, ids=ids, model=model,
                                     weights=weights, settings=settings, field=field, overwrite=overwrite,
                                     only_missing=only_missing, trust_checkpoint=trust, remember=remember)
            except workers.WorkerCrashed as exc:
                raise MaskreviewError(workers.crash_message(exc, "the model run")) from exc
            status = result["status"]
            if status == "load_failure":
                return LoadFailure(_load_error(result), model, weights)
            if status == "field_taken":
                from maskreview.core.model.provenance import FieldTakenError

                return FieldTaken(FieldTakenError(result["field"], result["free_field"], result["holder"]))
            if status == "current":
                return RunOutcome(result["field"], None, model)
            return RunOutcome(result["field"], result["report"], model, result["count"])

        return fn

    def _written(self, job, sample_ids: list[str]) -> None:
        """One batch landed: the field appears in the Overlays panel, thumbnails and canvas redraw."""
        w = self.window
        job.written.update(sample_ids)
        self.add_field(job.field, name_models=False)  # named at the run's end (_finished): no reload mid-run
        if w.edits is not None:  # edits to these samples are now based on the run's version
            w.edits.session.track(sample_ids, read={sid: job.read_versions.pop(sid) for sid in sample_ids
                                                    if sid in job.read_versions})
        w.browser.model.invalidate(sample_ids)
        if w.current_sample_id in sample_ids:
            w.show_sample(w.current_sample_id, keep_view=True)
        w._histogram_timer.start()

    def _succeeded(self, job, result) -> None:
        w = self.window
        self._release(job)  # a rerun from the dialogs below must not find this run still going
        if isinstance(result, LoadFailure):
            result.rerun = job.rerun
            self._show_load_failure(result)
            return
        if isinstance(result, FieldTaken):
            result.rerun = job.rerun
            self._ask_other_field(result)
            return
        self.last_outcome = result
        self._push(job)
        report = result.report
        if report is None:
            w.statusBar().showMessage("predictions are up to date", 10000)
        else:
            kept = getattr(report, "kept_reviewed", 0)
            w.statusBar().showMessage(
                f"{result.model} → {result.field}: {report.predicted} predicted, {report.skipped} already done, "
                f"{len(report.failures)} failed, {kept} reviewed label{'s' if kept != 1 else ''} kept "
                f"({report.images_per_second:.1f} img/s)", 10000)
        if result.model == w.model_name and result.field:
            self._last_good = (w.model_name, self.weights, self.field)
            self._remember(result.field)  # the automatic run then knows its field without loading the model
        self.run_done.emit(result)

    def _push(self, job, stopped: bool = False) -> None:
        if job.partial is None or not job.written:
            return
        field, before, after = job.partial
        job.partial = None
        n = len(job.written)
        text = f"Run {job.model_label} on {n} sample{'s' if n != 1 else ''} → {field}"
        text += " (stopped)" if stopped else ""
        self.window.undo_stack.push(ModelRunCommand(self, field, before, after, text))
        self.refresh_models()

    def _release(self, job) -> None:
        """``job``'s result is in: the window may start the next run. Its thread ends a moment
        later, and a run started in between (the user answering a dialog) stays the current one."""
        if self.window.inference is job:
            self.window.inference = None

    def _finished(self, job) -> None:
        self._release(job)
        if self._models_behind:  # a new field came in while it ran: once, not at its first write
            self.refresh_models()
        self.window._histogram_timer.start(0)

    # ------------------------------------------------------------------ undo / redo of a run
    def restore(self, field: str, snapshot) -> None:
        from maskreview.core.model.field_snapshot import restore_field

        w = self.window
        try:
            ids = restore_field(w.dataset, snapshot)
        except MaskreviewError as exc:
            w.notify(f"cannot undo the model run: {exc}")
            return
        if w.edits is not None:
            w.edits.session.track(ids)
        if field in w.dataset.get_field_schema():
            self.add_field(field)
        elif field in w.label_fields:
            w.label_fields.remove(field)
            self._fields_changed()
        for sid in ids:
            w.refresh_sample(sid)
        if w.current_sample_id and w.current_sample_id not in ids:
            w.show_sample(w.current_sample_id, keep_view=True)

    # ------------------------------------------------------------------ fields and their models
    def add_field(self, field: str | None, name_models: bool = True) -> None:
        """``field`` into the panels. ``name_models=False`` (a run's first write): which model
        wrote which field is read later; the dataset's reload it needs (a new field: 15-45 ms
        on the GUI thread) would otherwise stall the window in the middle of the run."""
        w = self.window
        if field and field not in w.label_fields and w.dataset is not None:
            w.label_fields.append(field)
            self._fields_changed(name_models)

    def _fields_changed(self, name_models: bool = True) -> None:
        w = self.window
        w.canvas.field_order = w.label_fields
        w.fields_panel.set_fields(w.label_fields, w.canvas.style.hidden_fields)
        w.state.label_fields = tuple(w.label_fields)  # the histogram counts the state's fields: the new one too
        if name_models:
            self.refresh_models()
        else:
            self._models_behind = True

    def refresh_models(self) -> None:
        """Re-read which model wrote each prediction field; the Overlays panel names them. The
        dataset is reloaded only when its document changed in the database (the model worker's
        run records, new fields), and only ``info`` is read again when the run records are all
        that changed (``store.dataset_doc.refresh``): a reload on the GUI thread stalls the
        window 15-80 ms."""
        from maskreview.core.model.provenance import prediction_fields
        from maskreview.core.store.dataset_doc import changed_since_loaded, refresh

        self._models_behind = False
        dataset = self.window.dataset
        if dataset is not None and changed_since_loaded(dataset):  # only the run records changed: no reload
            shape = self._stored_shape if self._stored_shape[0] is dataset else (None, None)
            self._stored_shape = (dataset, refresh(dataset, shape[1]))
        models = prediction_fields(dataset) if dataset is not None else {}
        if models != self.models:
            self.models = models
            self.window.fields_panel.set_models(self.models)

    def current_field(self) -> str:
        """The field holding the chosen model's output: the picked one, else the one its runs
        wrote (``predictions`` first), else ``predictions``."""
        from maskreview.core.model.provenance import DEFAULT_FIELD

        model = self.window.model_name
        if self.field:
            return self.field
        mine = [f for f, record in self.models.items() if record.get("model") == model]
        return DEFAULT_FIELD if DEFAULT_FIELD in mine or not mine else sorted(mine)[0]

    # ------------------------------------------------------------------ failures
    def _ask_other_field(self, taken: FieldTaken) -> None:
        from PySide6.QtWidgets import QMessageBox

        from maskreview.core.model.provenance import model_label

        error = taken.error
        holder = f"the output of {model_label(error.holder)}" if error.holder else "labels that no model run wrote"
        box = QMessageBox(QMessageBox.Icon.Question, "Field taken",
                          f"“{error.field}” holds {holder}. A model run never writes over another model's output.",
                          QMessageBox.StandardButton.Cancel, self.window)
        box.setInformativeText(f"Write this model's predictions into “{error.free_field}” instead? "
                               "Nothing was changed.")
        other = box.addButton(f"Write into {error.free_field}", QMessageBox.ButtonRole.AcceptRole)

        def answered(button):
            if button is other:
                self.choose(self.window.model_name, self.weights, error.free_field)
                taken.rerun()

        box.buttonClicked.connect(answered)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.show()
        self.failure_dialog = box

    def _show_load_failure(self, failure: LoadFailure) -> None:
        from maskreview.gui.dialogs.model_failure import ModelFailureDialog

        self.load_failed.emit(failure)
        w, kept = self.window, None
        if (failure.model, failure.weights) == (w.model_name, self.weights) and self._last_good is not None \
                and self._last_good[:2] != (failure.model, failure.weights):
            # a model that does not load is not remembered for the dataset: the last one that worked stays
            w.model_name, self.weights, self.field = self._last_good
            self._remember()
            kept = w.model_name
        dialog = ModelFailureDialog(failure.model, failure.error, self.window, kept=kept)
        dialog.weights_chosen.connect(lambda path, m=failure.model: (self.choose(m, path), failure.rerun()))
        dialog.trust_chosen.connect(lambda m=failure.model, p=failure.weights: (
            self.choose(m, p, trust_checkpoint=True), failure.rerun()))
        dialog.other_model.connect(self.window.do_choose_model)
        dialog.show()
        self.failure_dialog = dialog


def _load_error(result: dict) -> MaskreviewError:
    from maskreview.core.model.safe_loading import UntrustedCheckpointError

    return (UntrustedCheckpointError if result.get("untrusted") else MaskreviewError)(result["message"])


def autorun_is_current(view, model: str, field: str | None, weights: str | None = None, settings=None) -> bool:
    """Whether ``field`` (the remembered one) already holds ``model``'s output for every sample
    of ``view``, judged from the field's record, the thresholds and the weights' checksum,
    without torch."""
    from maskreview.core.model.autorun import missing_sample_ids
    from maskreview.core.model.registry import file_sha256, is_url, resolve_model
    from maskreview.core.model.provenance import provenance

    if not field:
        return False
    record = provenance(dataset_of(view), field)
    if not record or not record.get(RUN_KEY):
        return False
    try:
        spec = resolve_model(model)
    except MaskreviewError:
        return False
    weights = weights or spec.weights
    if not weights or is_url(str(weights)) or record.get("weights_sha256") != file_sha256(weights):
        return False
    if settings is not None and any(record.get(k) != getattr(settings, k)
                                    for k in ("score_thresh", "nms_thresh", "max_detections")):
        return False
    return not missing_sample_ids(view, field, record[RUN_KEY])
