"""Model ▸ Choose model…: every model there is (``core.model_catalog``), its classes and, for a
trained folder, its held-out mAP; Browse… for a config and a weights file; a warning when the
model's classes share none with the dataset's (the shapes demo model on photos)."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout)

from maskreview.core.fields import GT_FIELD
from maskreview.gui import workers

OWN_FIELD = "(the model's own field)"
MAX_RECENT = 8


def _classes_text(classes: list[str], limit: int = 6) -> str:
    if not classes:
        return "?"
    head = ", ".join(classes[:limit])
    return f"{len(classes)}: {head}" + (" …" if len(classes) > limit else "")


class ModelPickerDialog(QDialog):
    """``chosen(model, weights or "", field or "", run_now)`` when the user takes a model."""

    chosen = Signal(str, str, str, bool)

    def __init__(self, current: str, weights: str | None, field: str | None, dataset_classes: list[str],
                 label_fields: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Choose model")
        self.dataset_classes = list(dataset_classes)
        self.entries = []
        self._current = current
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Model", "Kind", "Classes", "Held-out mAP"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in (1, 2, 3):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.details = QLabel("Looking for models…")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #e0443e; font-weight: bold;")
        self.warning.hide()

        self.model_edit = QLineEdit(current)
        self.model_edit.setPlaceholderText("demo, a model folder, a zoo config name or a YAML file")
        self.weights_edit = QLineEdit(weights or "")
        self.weights_edit.setPlaceholderText("the model's own weights")
        browse_config = QPushButton("Browse config…")
        browse_folder = QPushButton("Browse model folder…")
        browse_weights = QPushButton("Browse weights…")
        browse_config.clicked.connect(self._browse_config)
        browse_folder.clicked.connect(self._browse_folder)
        browse_weights.clicked.connect(self._browse_weights)
        self.field_box = QComboBox()
        self.field_box.setEditable(True)
        self.field_box.addItems([OWN_FIELD, *[f for f in label_fields if f != GT_FIELD]])
        self.field_box.setCurrentText(field or OWN_FIELD)
        self.field_box.setToolTip("Where the predictions go. The model's own field is 'predictions' for the first "
                                  "model, then pred_<model>: a run never writes over another model's output.")
        model_row, weights_row = QHBoxLayout(), QHBoxLayout()
        for row, widgets in ((model_row, (self.model_edit, browse_folder, browse_config)),
                             (weights_row, (self.weights_edit, browse_weights))):
            for w in widgets:
                row.addWidget(w)
        form = QFormLayout()
        form.addRow("Model", model_row)
        form.addRow("Weights file", weights_row)
        form.addRow("Write into", self.field_box)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.use_button = self.buttons.addButton("Use this model", QDialogButtonBox.ButtonRole.AcceptRole)
        self.run_button = self.buttons.addButton("Use and run on this image", QDialogButtonBox.ButtonRole.ActionRole)
        self.use_button.clicked.connect(lambda: self._take(False))
        self.run_button.clicked.connect(lambda: self._take(True))
        self.buttons.rejected.connect(self.reject)
        self.table.itemSelectionChanged.connect(self._row_selected)
        self.table.itemDoubleClicked.connect(lambda _item: self._take(False))
        self.model_edit.textEdited.connect(lambda _t: self._describe(self._typed_entry()))

        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        layout.addWidget(self.warning)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.resize(860, 620)

    # ------------------------------------------------------------------ the list
    def set_entries(self, entries) -> None:
        self.entries = list(entries)
        self.table.setRowCount(len(self.entries))
        for r, e in enumerate(self.entries):
            name = Path(e.name).name if e.kind in ("dir", "yaml") else e.name
            mAP = "" if e.held_out_map is None else f"{e.held_out_map:.3f}"
            if e.held_out_map is not None and e.base_held_out_map is not None:
                mAP = f"{e.held_out_map:.3f} (base {e.base_held_out_map:.3f})"
            for c, text in enumerate((name, e.kind_name, _classes_text(e.classes, 3), mAP)):
                item = QTableWidgetItem(text)
                item.setToolTip(e.name if c == 0 else text)
                if e.needs_download:
                    item.setForeground(self.palette().placeholderText())
                self.table.setItem(r, c, item)
        current = self._entry_named(self._current)
        if current is not None:
            self.table.selectRow(self.entries.index(current))
        else:
            self.details.setText(f"{len(self.entries)} models found.")

    def _entry_named(self, name: str):
        name = name.strip()
        for e in self.entries:
            if e.name == name or (e.path and e.kind == "dir" and str(Path(e.path).resolve()) == _resolved(name)):
                return e
        return None

    def _typed_entry(self):
        """The entry for the typed name: a listed model, else a model folder read from disk."""
        from maskreview.core.model.catalog import folder_entry

        name = self.model_edit.text().strip()
        return self._entry_named(name) or (folder_entry(name) if name and Path(name).is_dir() else None)

    def _row_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        entry = self.entries[rows[0].row()]
        self.model_edit.setText(entry.name)
        self._describe(entry)

    def _describe(self, entry) -> None:
        from maskreview.core.model.catalog import shared_classes

        if entry is None:
            self.details.setText("A model not in the list: it is checked when it loads.")
            self.warning.hide()
            self.use_button.setText("Use this model")
            return
        rows = [f"<b>{html.escape(entry.name)}</b> — {html.escape(entry.kind_name)}"]
        if entry.classes:
            rows.append(f"{len(entry.classes)} classes: " + html.escape(", ".join(entry.classes[:40]))
                        + (" …" if len(entry.classes) > 40 else ""))
        if entry.held_out_map is not None:
            line = f"held-out mask AP {entry.held_out_map:.3f}"
            if entry.held_out_samples:
                line += f" on {entry.held_out_samples} sample(s) it was not trained on"
            if entry.base_held_out_map is not None:
                line += f"; its base model ({html.escape(str(entry.trained_from))}) {entry.base_held_out_map:.3f}"
            rows.append(line)
        if entry.needs_download:
            rows.append("<i>needs download: its weights are fetched the first time it runs (needs internet)</i>")
        self.details.setText("<br>".join(rows))
        shared = shared_classes(entry.classes, self.dataset_classes)
        clash = bool(entry.classes and self.dataset_classes and not shared)
        self.warning.setVisible(clash)
        if clash:
            self.warning.setText(
                f"This model's classes ({_classes_text(entry.classes, 5)}) share none with this dataset's "
                f"({_classes_text(self.dataset_classes, 5)}): its predictions will not match any label here.")
        self.use_button.setText("Use anyway" if clash else "Use this model")
        self.run_button.setText("Run anyway on this image" if clash else "Use and run on this image")

    # ------------------------------------------------------------------ browsing
    def _browse_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a detectron2 config", "", "Configs (*.yaml *.yml)")
        if path:
            self.model_edit.setText(path)
            self._describe(self._entry_named(path))

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a model folder (written by maskreview train)")
        if path:
            from maskreview.core.model.catalog import folder_entry

            entry = folder_entry(path)
            self.model_edit.setText(path)
            self._describe(entry)
            if entry is None:
                self.details.setText(f"{html.escape(path)} has no config.yaml: not a model folder.")

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a weights file", "", "Weights (*.pth *.pkl);;All files (*)")
        if path:
            self.weights_edit.setText(path)

    # ------------------------------------------------------------------ result
    def _take(self, run_now: bool) -> None:
        model = self.model_edit.text().strip()
        if not model:
            self.details.setText("Pick a model first.")
            return
        field = self.field_box.currentText().strip()
        self.chosen.emit(model, self.weights_edit.text().strip(), "" if field == OWN_FIELD else field, run_now)
        self.accept()


def _resolved(name: str) -> str:
    try:
        return str(Path(name).expanduser().resolve())
    except OSError:
        return name


def _catalog(recent):
    from maskreview.core.model.catalog import catalog

    return catalog(recent)


def open_picker(window, runs) -> ModelPickerDialog:
    """Show the picker for ``window``; the choice goes to ``runs`` (a ``gui.model_runs.ModelRuns``)."""
    dialog = ModelPickerDialog(window.model_name, runs.weights, runs.field, window.classes, window.label_fields,
                               window)

    def take(model, weights, field, run_now):
        runs.choose(model, weights or None, field or None)
        add_recent_model(window.settings, model)
        window.statusBar().showMessage(f"model: {model}" + (f" with {weights}" if weights else ""), 6000)
        if run_now:
            window.do_infer_current()

    dialog.chosen.connect(take)
    recent = recent_models(window.settings)
    window._start_job(workers.Job(lambda progress: _catalog(recent), "listing models"), dialog.set_entries,
                      track=False)  # the window waits for it on close
    if runs.picker is not None:
        runs.picker.deleteLater()
    runs.picker = dialog
    dialog.show()
    return dialog


def recent_models(settings) -> list[str]:
    value = settings.value("model/recent", [])
    return [value] if isinstance(value, str) else list(value or [])


def add_recent_model(settings, model: str) -> None:
    if model == "demo":
        return
    path = _resolved(model) if Path(model).expanduser().exists() else model
    settings.set_value("model/recent", [path, *[r for r in recent_models(settings) if r != path]][:MAX_RECENT])
