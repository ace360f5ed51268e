"""The main window: composes the canvas, browser, docks, actions and menus; core does the work.

Extension points for other parts of the GUI:

- ``state`` is the review state (``core.review.ReviewState``): what is shown, filtered, selected
  and at which thresholds; every panel observes it, features in ``gui/features/`` get it;
- ``add_dock(widget, title, area)`` adds a dock (listed in the View menu);
- ``canvas.set_tool(tool)`` installs an edit tool (``gui.canvas.CanvasTool``);
- ``undo_stack`` takes QUndoCommands; ``refresh_sample(id)`` redraws a sample after an edit;
- ``set_dataset``, ``current_sample_id``, ``set_eval_key``.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from PySide6.QtCore import QTimer, Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QMainWindow, QMenu, QMessageBox, QToolBar)

from maskreview.core.fields import GT_FIELD, PRED_FIELD
from maskreview.core.review import ReviewState
from maskreview.gui import features, workers
from maskreview.gui.actions import ShortcutSheet, apply_spec, build_actions, icon, spec_of, ACTIONS
from maskreview.gui.browser import SampleBrowser
from maskreview.gui.canvas import ImageCanvas, build_sample_data, load_sample, patched_sample
from maskreview.gui import queries
from maskreview.gui.canvas.loupe import Loupe
from maskreview.gui.canvas.overlay import COLOR_MODES, class_color
from maskreview.gui.panels.fields import FieldsPanel
from maskreview.gui.panels.histogram import ClassHistogram
from maskreview.gui.panels.info import SampleInfoPanel
from maskreview.gui.status_bar import StatusBar
from maskreview.gui.panels.tags import TagsPanel
from maskreview.gui.settings import Settings

GT, PRED = GT_FIELD, PRED_FIELD
_DOCK_AREAS = {"left": Qt.DockWidgetArea.LeftDockWidgetArea, "right": Qt.DockWidgetArea.RightDockWidgetArea,
               "bottom": Qt.DockWidgetArea.BottomDockWidgetArea}


class MainWindow(QMainWindow):
    dataset_changed = Signal(object)
    sample_changed = Signal(object)  # sample id or None

    def __init__(self, settings: Settings | None = None):
        super().__init__()
        self.setWindowTitle("maskreview")
        self.setWindowIcon(icon("app"))
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        self.dataset = None
        self.label_fields: list[str] = []
        self.classes: list[str] = []
        self.eval_key: str | None = None
        self.model_name = str(self.settings.value("model/name", "demo"))
        from maskreview.core.model.engine import EngineSettings

        self.engine_settings = EngineSettings()
        self.model_worker = workers.model_worker()  # the model runs in its own process (core.model.worker)
        self.undo_stack = QUndoStack(self)
        self.jobs: list[workers.Job] = []
        self.inference: workers.Job | None = None
        self.scratch = None
        self._message = None
        self._saved_style = None  # the overlay style last written to the settings
        from maskreview.gui.sample_prefetch import SamplePrefetch

        self.prefetch = SamplePrefetch(self)  # the next and previous samples read ahead (browsing)

        self.state = ReviewState()
        self.canvas = ImageCanvas(state=self.state)
        self.setCentralWidget(self.canvas)
        self.browser = SampleBrowser(state=self.state)
        self.fields_panel = FieldsPanel()
        self.info_panel = SampleInfoPanel()
        self.tags_panel = TagsPanel()
        self.histogram = ClassHistogram()
        self.loupe = Loupe(self.canvas)
        self.setStatusBar(StatusBar())
        self.progress = workers.ProgressWidget()
        self.statusBar().addPermanentWidget(self.progress)
        self.docks: dict[str, QDockWidget] = {}
        self.actions_ = build_actions(self)
        self._build_menus()
        self.add_dock(self.browser, "Samples", "left")
        self.add_dock(self.fields_panel, "Overlays", "right")
        self.add_dock(self.info_panel, "Sample", "right")
        self.add_dock(self.tags_panel, "Tags", "right")
        self.add_dock(self.loupe, "Loupe", "right")
        self.add_dock(self.histogram, "Class distribution", "left")
        self.tabifyDockWidget(self.docks["Tags"], self.docks["Loupe"])
        self.docks["Sample"].raise_()
        self.features = SimpleNamespace()  # evaluation, model panel, editing, tagging... (gui/features/)
        features.install_all(self, self.state, self.features)
        self.menus["File"].addSeparator()  # desktop convention: Quit is File's last entry, set apart
        self.menus["File"].addAction(self.actions_["quit"])
        self.evaluation = self.features.evaluation.dock
        self._histogram_timer = self.features.browsing.timer

        self.canvas.set_style(**self.settings.load_style(self.canvas.style))
        self.fields_panel.sync(self.canvas.style)
        self._connect()
        self.settings.restore_window(self)
        self.statusBar().showMessage("Opening dataset…  (drop an image, a folder or a COCO JSON here at any time)")
        self.canvas.set_empty_text("Opening the dataset… (progress in the status bar)\n\n"
                                   "Drop an image, a folder or a COCO JSON here at any time, or use File ▸ Open.")
        self._sync_toggles()

    # ------------------------------------------------------------------ composition
    def _build_menus(self) -> None:
        menus: dict[str, QMenu] = {}
        toolbar = QToolBar("Main")
        toolbar.setObjectName("toolbar-main")
        self.addToolBar(toolbar)
        for name in ("undo", "redo"):  # the stack's actions name the step ("Undo delete label"); keys from the specs
            make = self.undo_stack.createUndoAction if name == "undo" else self.undo_stack.createRedoAction
            self.actions_[name] = apply_spec(make(self, "&" + name.capitalize()), spec_of(name))
            self.addAction(self.actions_[name])
        for spec in ACTIONS:
            if spec.menu not in menus:
                menus[spec.menu] = self.menuBar().addMenu("&Edit" if spec.menu == "Edit" else spec.menu)
            if spec.name != "quit":  # Quit goes last in File, after what the features add (below)
                menus[spec.menu].addAction(self.actions_[spec.name])
            if spec.toolbar:
                toolbar.addAction(self.actions_[spec.name])
        self.recent_menu = menus["File"].addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.edit_menu = menus["Edit"]
        self.view_menu = menus["View"]
        self.view_menu.addSeparator()
        self.menus = menus
        self.toolbar = toolbar

    def add_dock(self, widget, title: str, area: str = "right") -> QDockWidget:
        """Add a dockable panel (listed in the View menu); returns the dock."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(widget)
        self.addDockWidget(_DOCK_AREAS.get(area, area), dock)
        self.view_menu.addAction(dock.toggleViewAction())
        self.docks[title] = dock
        return dock

    def _connect(self) -> None:
        self.browser.current_changed.connect(self.show_sample)
        self.fields_panel.changed.connect(self._style_changed)
        self.canvas.overlays_changed.connect(self._overlays_changed)
        self.canvas.instance_framed.connect(self.canvas.select_instance)  # N / P frame a label: keys act on it
        for group in (self.state.thresholds, self.state.display):  # changed elsewhere (the evaluation dock)
            group.events.all.connect(lambda *_: self._sync_toggles())
        self.tags_panel.add_requested.connect(lambda tag: self._edit_tags(add=tag))
        self.tags_panel.remove_requested.connect(lambda tag: self._edit_tags(remove=tag))

    # ------------------------------------------------------------------ the editing feature's parts
    edits = property(lambda self: self.features.editing.edits, doc="the open dataset's EditController")
    edit_prompts = property(lambda self: self.features.editing.prompts)
    edit_tools = property(lambda self: self.features.editing.tools)
    review_label = property(lambda self: self.features.editing.review_label)
    edits_failed = property(lambda self: self.features.editing.failed)

    @property
    def tag_keys(self) -> dict:
        return self.features.editing.tag_keys

    @tag_keys.setter
    def tag_keys(self, keys: dict) -> None:
        self.features.editing.tag_keys = keys

    # ------------------------------------------------------------------ public API
    @property
    def current_sample_id(self) -> str | None:
        data = self.canvas.data
        return data.sample_id if data is not None else None

    def set_dataset(self, dataset) -> None:
        from maskreview.core.store import fiftyone

        last = self.settings.last_sample(dataset.name)  # reopen where the reviewer was (read before a row shows)
        self.canvas.set_empty_text("No sample to show: the dataset is empty, or the filters hide every sample.\n\n"
                                   "Drop an image, a folder or a COCO JSON here, or use File ▸ Open.")
        self.dataset = dataset
        self.scratch = None
        fo = fiftyone()
        from maskreview.core.fields import ORIGINAL_SUFFIX

        fields = [f for f in dataset.get_field_schema(embedded_doc_type=fo.Detections)
                  if not f.endswith(ORIGINAL_SUFFIX)]  # pre-review snapshots are not layers to review
        self.label_fields = sorted(fields, key=lambda f: (f != GT, f != PRED, f))
        self.classes = list(dataset.default_classes or [])
        evals = dataset.list_evaluations() if hasattr(dataset, "list_evaluations") else []
        self.eval_key = evals[-1] if evals else None
        ids, paths = queries.ids_and_paths(dataset)
        self.canvas.field_order = self.label_fields
        self.canvas.classes = self.classes
        self.fields_panel.set_fields(self.label_fields, self.canvas.style.hidden_fields)
        self._fill_classes()
        self.browser.model.overlay_source = self._thumbnail_overlays
        self.browser.model.set_samples(ids, paths)
        self.state.set_dataset(dataset, ids, self.browser.model.names, self.label_fields, self.classes)
        self.setWindowTitle(f"maskreview — {dataset.name}")
        self.statusBar().showMessage(f"{dataset.name}: {len(ids)} samples", 5000)
        self.settings.add_recent(dataset.name)
        self.dataset_changed.emit(dataset)
        if last in self.browser.model.row_of:
            self.browser.select_id(last)
        elif ids:
            self.browser.select_row(0)
        else:
            self.show_sample(None)
        QTimer.singleShot(0, self.refresh_statistics)

    def set_eval_key(self, key: str | None) -> None:
        """Which evaluation's per-label ``<key>``, ``<key>_iou``, ``<key>_id`` attributes to show."""
        self.eval_key = key
        self.refresh_sample(self.current_sample_id)
        self.browser.model.invalidate()

    def refresh_sample(self, sample_id: str | None = None, patches: list | None = None) -> None:
        """Re-read a sample's labels (after an edit or inference); redraw canvas and thumbnail.
        ``patches``: what an edit just wrote to it; the sample on show is then updated from them
        instead of read again, where that is exact (``canvas.sample.patched_sample``)."""
        if sample_id is None:
            return
        self.browser.model.invalidate([sample_id])
        if sample_id == self.current_sample_id:
            shown = self.canvas.data
            if patches and shown is not None and shown.version is not None and shown.version == patches[-1].result:
                self._shown(shown)  # drawn from these patches while they were written (show_patched)
            elif (data := patched_sample(shown, patches) if patches else None) is not None:
                self._show(data, keep_view=True)
            else:
                self.show_sample(sample_id, keep_view=True)
        self._histogram_timer.start()

    def show_patched(self, sample_id: str, patches: list) -> None:
        """The sample on show drawn from an edit's patches while the edit's write is in flight
        (``EditController.applying``): the canvas only. The panels, the thumbnail and
        ``sample_changed``, whose handlers may read the database, follow when it has landed
        (:meth:`refresh_sample`)."""
        if sample_id == self.current_sample_id:
            data = patched_sample(self.canvas.data, patches)
            if data is not None:
                self.canvas.set_sample(data, keep_view=True)

    def apply_filter(self, sample_ids=None, label_ids=None, description: str = "filter") -> None:
        """Show only these samples in the browser and these labels on the canvas (None: all)."""
        self.state.drill_down(sample_ids, label_ids, description)

    # ------------------------------------------------------------------ showing samples
    def show_sample(self, sample_id: str | None, keep_view: bool = False) -> None:
        if sample_id is None or self.dataset is None:
            self.state.set_current_sample(None)
            self.canvas.set_sample(None)
            self.info_panel.show_sample(None)
            self.tags_panel.show_tags([], enabled=False)
            self.sample_changed.emit(None)
            return
        from maskreview.core.errors import MaskreviewError

        if self.edits is not None:
            self.edits.settle()  # an edit's write in flight lands first: what is read is after it
        try:
            # no stored TP/FP: they go stale with every edit; the evaluation feature matches live
            data = (None if keep_view else self.prefetch.take(sample_id)) or \
                load_sample(self.dataset, sample_id, self.label_fields)
        except MaskreviewError as exc:  # deleted elsewhere (the FiftyOne App, another reviewer)
            self.notify(f"{exc}; it was probably deleted elsewhere: reopen the dataset (File ▸ Open recent)")
            self.show_sample(None)
            return
        self._show(data, keep_view)
        self.prefetch.after_show(sample_id)

    def _show(self, data, keep_view: bool = False) -> None:
        self.state.set_current_sample(data.sample_id)
        self.canvas.set_sample(data, keep_view=keep_view)
        self._shown(data)

    def _shown(self, data) -> None:
        """The panels and ``sample_changed`` of the sample the canvas shows now."""
        self.info_panel.show_sample(data, self.canvas.visible_counts())
        self.tags_panel.show_tags(data.tags, enabled=not data.scratch)
        self.actions_["add_scratch"].setEnabled(data.scratch and self.dataset is not None)
        self.sample_changed.emit(data.sample_id)

    def _style_changed(self, changes: dict) -> None:
        threshold = self.canvas.style.conf_threshold
        self.canvas.set_style(**changes)
        if self.canvas.style.conf_threshold != threshold:
            self._histogram_timer.start()  # the class counts follow the confidence threshold

    def _overlays_changed(self) -> None:
        counts = self.canvas.visible_counts()
        self._sync_toggles()
        self.fields_panel.set_counts(counts)
        if self.canvas.data is not None:
            self.info_panel.show_sample(self.canvas.data, counts)
        style = self.canvas.style
        if style != self._saved_style:  # not at every browse step: each save is a QSettings sync
            self._saved_style = style
            self.settings.save_style(style)

    def _fill_classes(self) -> None:
        self.fields_panel.set_classes(self.classes, [class_color(c, self.classes) for c in self.classes],
                                      self.canvas.style.hidden_classes)

    def _sync_toggles(self) -> None:
        s = self.canvas.style
        states = {"toggle_gt": GT not in s.hidden_fields, "toggle_predictions": PRED not in s.hidden_fields,
                  "toggle_fills": s.fills, "toggle_contours": s.contours, "toggle_boxes": s.boxes, "toggle_labels": s.labels}
        for name, on in states.items():
            self.actions_[name].setChecked(on)
        self.fields_panel.sync(s)

    def _thumbnail_overlays(self, ids: list[str]) -> dict:
        """For the thumbnail workers: each sample's visible instances and colours (thread-safe reads)."""
        from maskreview.gui.canvas.overlay import instances_from_detections

        dataset, canvas = self.dataset, self.canvas
        fields = [f for f in self.label_fields if f not in canvas.style.hidden_fields]
        if dataset is None or not fields:
            return {}
        out = {}
        outcomes = self.features.badges.outcomes() if canvas.style.color_mode == "eval" else None
        for sid, raw in queries.read_samples(dataset, ids, fields).items():
            if not raw.width or not raw.height:
                continue
            insts = [i for f in fields for i in instances_from_detections(f, raw.labels[f], raw.height, raw.width)
                     if canvas.instance_visible(i)]
            for inst in insts if outcomes is not None else ():  # TP / FP / FN at the thresholds, as the canvas
                inst.eval = outcomes.get(inst.id)
            out[sid] = (raw.height, raw.width, insts, [canvas.color_of(i) for i in insts])
        return out

    # ------------------------------------------------------------------ statistics, tags
    def refresh_statistics(self) -> None:
        """Class counts of what is shown (histogram) and the tag list (``features.browsing``)."""
        self.features.browsing.refresh_statistics()

    def statistics_ready(self, counts: dict, tags: list[str]) -> None:
        self.histogram.set_counts(counts, self.classes)
        new = [c for c in self.histogram.classes if c not in self.classes]
        if new:
            self.classes += new
            self.canvas.set_classes(self.classes)
            self._fill_classes()
        self.browser.set_tags(tags)

    def _edit_tags(self, add: str | None = None, remove: str | None = None) -> None:
        sid = self.current_sample_id
        if sid is None or self.dataset is None or getattr(self, "edits", None) is None:
            return
        from maskreview.core.editing.ops import SampleTags

        # journaled, undoable, conflict-checked like every edit (no session, no edit)
        self.edits.apply(SampleTags((sid,), (add or remove,), "add" if add else "remove"))

    # ------------------------------------------------------------------ jobs
    def _start_job(self, job: workers.Job, on_success=None, track: bool = True) -> workers.Job:
        self.jobs.append(job)
        if on_success is not None:
            job.succeeded.connect(on_success)
        job.failed.connect(self._job_failed)
        job.progress.emitter.noted.connect(lambda text: self.statusBar().showMessage(text, 15000))
        job.finished.connect(lambda j=job: self.jobs.remove(j) if j in self.jobs else None)
        if track:
            self.progress.track(job)
        job.start()
        return job

    def _job_failed(self, message: str, kind: str) -> None:
        if kind == "cancelled":
            self.statusBar().showMessage(message, 8000)
        elif kind == "database":
            self.show_database_error(message)
        else:
            self.notify(message)

    def notify(self, message: str, title: str = "maskreview") -> QMessageBox:
        """A non-blocking message box (the window keeps working behind it); it replaces the one
        before, so a run of failures leaves one box, not a pile of them."""
        self.statusBar().showMessage(message, 10000)
        if self._message is not None:
            self._message.close()
            self._message.deleteLater()
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.show()
        self._message = box
        return box

    def show_database_error(self, message: str) -> QMessageBox:
        box = self.notify(message, "Database unavailable")
        box.setText("maskreview cannot reach FiftyOne's database, so no dataset can be opened.")
        box.setInformativeText(
            "What to do: close other programs that use the same database folder (another maskreview or "
            "FiftyOne), make sure the data folder is writable and the disk is not full, or set "
            "FIFTYONE_DATABASE_URI to a running MongoDB. Then reopen the dataset (File ▸ Open recent).")
        box.setDetailedText(message)
        return box

    def open_source(self, source: str | None, images_dir: str | None = None,
                    fallback_to_demo: bool = False) -> workers.Job:
        """Open a folder / COCO JSON / dataset name (None: the demo) on a worker thread."""
        return self._start_job(workers.open_source_job(source, images_dir, fallback_to_demo), self.set_dataset)

    def run_inference(self, scope: str = "dataset", overwrite: bool | None = None, model: str | None = None,
                      skip_if_current: bool = False) -> workers.Job | None:
        """Run the current model (or ``model``) over ``"dataset"``, ``"selection"`` or ``"current"`` in
        the background, into the model's own field, as one undo step (``gui.model_runs``)."""
        return self.model_runs.run(scope, overwrite, model, skip_if_current)

    # ------------------------------------------------------------------ drag and drop
    # The one home for drops: a drop anywhere in the window (canvas, browser, docks) ends here,
    # since Qt passes a drag that a child does not accept on to its parents.
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.handle_drop(paths)

    def handle_drop(self, paths: list[str]) -> None:
        from maskreview.core.images import is_image_path

        path = paths[0]
        if os.path.isdir(path) or path.lower().endswith(".json"):
            self.open_source(path)
        elif is_image_path(path) and os.path.isfile(path):
            self.open_scratch(path)
        elif path.lower().endswith((".yaml", ".yml", ".pth", ".pkl")):
            self.notify(f"{os.path.basename(path)}: a model file? Choose models with Model ▸ Choose model…; "
                        "a drop opens images, folders of images and COCO instances JSON files.")
        else:
            self.notify(f"{os.path.basename(path)}: maskreview opens images (.jpg, .png, .tif, .bmp, .webp), "
                        "folders of images and COCO instances JSON files. Drop one of those.")

    def open_scratch(self, path: str) -> workers.Job:
        """Show a dropped image at once and run the model on it (not added to the dataset).
        An image that does not decode gets a dialog, and what was shown stays."""
        data = build_sample_data(None, path, {})
        if data.error:
            self.notify(data.error)
            return None
        self.scratch = data
        self._show(self.scratch)
        job = workers.predict_image_job(path, self.model_worker, self.model_name, self.engine_settings,
                                        self.model_runs.weights)
        return self._start_job(job, lambda result, p=path: self._scratch_ready(p, *result))

    def _scratch_ready(self, path: str, image, detections) -> None:
        if self.scratch is None or self.scratch.filepath != path:
            return
        data = build_sample_data(None, path, {PRED: detections}, image=image)
        data.scratch_detections = {PRED: detections}
        self.scratch = data
        if PRED not in self.canvas.field_order:
            self.canvas.field_order = [*self.label_fields, PRED]
        self._show(data, keep_view=True)
        self.statusBar().showMessage(f"{len(detections.detections)} predictions on {os.path.basename(path)} "
                                     "(File ▸ Add dropped image to dataset keeps it)", 8000)

    # ------------------------------------------------------------------ action handlers
    def do_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open COCO JSON or image", "", "COCO JSON or images (*.json *.jpg *.jpeg *.png *.tif *.tiff *.bmp *.webp);;All files (*)")
        if path:
            self.handle_drop([path]) if not path.lower().endswith(".json") else self.open_source(path)

    def do_open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if path:
            self.open_source(path)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for name in self.settings.recent():
            self.recent_menu.addAction(name, lambda n=name: self.open_source(n))
        self.recent_menu.addAction("Demo dataset", lambda: self.open_source(None))

    def do_add_scratch(self) -> None:
        from maskreview.core.errors import MaskreviewError
        from maskreview.core.images import image_header
        from maskreview.core.store import fiftyone

        data = self.scratch
        if data is None or self.dataset is None:
            return
        fo = fiftyone()
        try:  # the file may have changed since it was dropped
            width, height, mime = image_header(data.filepath)
            sample = fo.Sample(filepath=os.path.abspath(data.filepath),
                               metadata=fo.ImageMetadata(width=width, height=height, mime_type=mime))
            self.dataset.add_sample(sample)
        except MaskreviewError as exc:
            self.notify(str(exc))
            return
        self.scratch = None
        self.set_dataset(self.dataset)  # the automatic run predicts the new sample with the chosen model
        self.browser.select_id(sample.id)
        if self.inference is None:  # no model remembered for this dataset: the one that predicted the drop
            self.model_runs.run(sample_ids=[sample.id], automatic=True)

    def do_quit(self) -> None:
        self.close()

    def do_next_sample(self) -> None:
        self.browser.step(1)

    def do_prev_sample(self) -> None:
        self.browser.step(-1)

    def do_first_sample(self) -> None:
        self.browser.select_row(0)

    def do_last_sample(self) -> None:
        self.browser.select_row(self.browser.model.rowCount() - 1)

    def do_next_instance(self) -> None:
        self.canvas.step_instance(1)

    def do_prev_instance(self) -> None:
        self.canvas.step_instance(-1)

    def do_focus_search(self) -> None:
        self.docks["Samples"].show()
        self.browser.search.setFocus()
        self.browser.search.selectAll()

    def do_clear_filters(self) -> None:
        self.state.show_all()

    def do_zoom_in(self) -> None:
        self.canvas.zoom_by(1.5)

    def do_zoom_out(self) -> None:
        self.canvas.zoom_by(1 / 1.5)

    def do_fit(self) -> None:
        self.canvas.fit()

    def do_actual_size(self) -> None:
        self.canvas.actual_size()

    def do_zoom_16(self) -> None:
        self.canvas.set_zoom(16.0)

    def _toggle_field(self, name: str) -> None:
        hidden = set(self.canvas.style.hidden_fields)
        hidden.symmetric_difference_update({name})
        self.canvas.set_style(hidden_fields=frozenset(hidden))

    def do_toggle_gt(self) -> None:
        self._toggle_field(GT)

    def do_toggle_predictions(self) -> None:
        self._toggle_field(PRED)

    def do_toggle_fills(self) -> None:
        self.canvas.set_style(fills=not self.canvas.style.fills)

    def do_toggle_contours(self) -> None:
        self.canvas.set_style(contours=not self.canvas.style.contours)

    def do_toggle_boxes(self) -> None:
        self.canvas.set_style(boxes=not self.canvas.style.boxes)

    def do_toggle_labels(self) -> None:
        self.canvas.set_style(labels=not self.canvas.style.labels)

    def do_cycle_colors(self) -> None:
        modes = list(COLOR_MODES)
        mode = modes[(modes.index(self.canvas.style.color_mode) + 1) % len(modes)]
        self.canvas.set_style(color_mode=mode)
        self.statusBar().showMessage(f"colour by {mode}", 3000)

    def _nudge(self, attr: str, delta: float) -> None:
        value = min(max(getattr(self.canvas.style, attr) + delta, 0.0), 1.0)
        self._style_changed({attr: round(value, 2)})

    def do_confidence_up(self) -> None:
        self._nudge("conf_threshold", 0.05)

    def do_confidence_down(self) -> None:
        self._nudge("conf_threshold", -0.05)

    def do_opacity_up(self) -> None:
        self._nudge("opacity", 0.1)

    def do_opacity_down(self) -> None:
        self._nudge("opacity", -0.1)

    def do_infer_current(self) -> None:
        if self.scratch is not None and self.current_sample_id is None:
            self.open_scratch(self.scratch.filepath)
        else:
            self.run_inference("current")

    def do_infer_selection(self) -> None:
        self.run_inference("selection")

    def do_infer_dataset(self) -> None:
        self.run_inference("dataset")

    def do_choose_model(self) -> None:
        from maskreview.gui.dialogs.model_picker import open_picker

        open_picker(self, self.model_runs)

    def do_cancel_job(self) -> None:
        if self.progress.job is not None:
            self.progress.cancel()

    def do_shortcuts(self) -> None:
        self._sheet = ShortcutSheet(self)
        self._sheet.show()

    def closeEvent(self, event) -> None:
        self.settings.save_window(self)
        self.settings.save_style(self.canvas.style)
        self.settings.sync()
        self._histogram_timer.stop()  # else it may start a statistics job after the window closed
        for job in list(self.jobs):
            job.cancel()
        for job in list(self.jobs):
            job.wait(5000)
        self.browser.model.wait(2000)
        self.prefetch.close()
        super().closeEvent(event)
