"""File → Export tagged…: choose sample tags, label tags and label fields (each listed with its
count), format and folder; a live line says how many samples and labels will be written, and an
export that matches nothing cannot be started. The export itself runs as a Job.

Main window::

    dialog = ExportDialog(self.dataset, self)
    if dialog.exec():
        self.run_job(dialog.job_fn(), "export")     # workers.Job: progress, cancel, errors
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMessageBox,
                               QPushButton, QWidget)

from maskreview.core.errors import BadInputError
from maskreview.core.fields import GT_FIELD, ORIGINAL_SUFFIX


def _checklist(rows: list[tuple[str, int]], checked=(), empty: str = "") -> QListWidget:
    """A list of ``name (count)`` rows with check boxes; the name is the item's data."""
    widget = QListWidget()
    for name, count in rows:
        item = QListWidgetItem(f"{name} ({count})")
        item.setData(Qt.ItemDataRole.UserRole, name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if name in checked else Qt.CheckState.Unchecked)
        widget.addItem(item)
    if not rows and empty:
        item = QListWidgetItem(empty)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        widget.addItem(item)
    widget.setMaximumHeight(22 * min(max(len(rows), 1), 5) + 8)
    return widget


def checked_names(widget: QListWidget) -> list[str]:
    items = (widget.item(i) for i in range(widget.count()))
    return [item.data(Qt.ItemDataRole.UserRole) for item in items
            if item.data(Qt.ItemDataRole.UserRole) is not None and item.checkState() == Qt.CheckState.Checked]


def set_checked(widget: QListWidget, names) -> None:
    for i in range(widget.count()):
        item = widget.item(i)
        if item.data(Qt.ItemDataRole.UserRole) is not None:
            item.setCheckState(Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole) in names
                               else Qt.CheckState.Unchecked)


def detection_fields(dataset) -> list[str]:
    return [f for f, v in dataset.get_field_schema().items()
            if getattr(v, "document_type", None) is not None
            and v.document_type.__name__ == "Detections" and not f.endswith(ORIGINAL_SUFFIX)]


class ExportDialog(QDialog):
    def __init__(self, dataset, parent=None, field: str = GT_FIELD):
        super().__init__(parent)
        self.setWindowTitle("Export tagged samples")
        self.dataset = dataset
        sample_tags = dataset.count_sample_tags()
        fields = detection_fields(dataset)
        self.tags = _checklist(sorted(sample_tags.items()), {"reviewed"}, "no sample tags: all samples")
        self.tags.setToolTip("None checked: all samples; else the samples with any of the checked tags")
        self.fields = _checklist([(f, dataset.count(f"{f}.detections")) for f in fields],
                                 {field} if field in fields else set(fields[:1]))
        label_tags = dataset.count_label_tags(label_fields=fields) if fields else {}
        self.label_tags = _checklist(sorted(label_tags.items()), (), "no label tags: all labels")
        self.label_tags.setToolTip("None checked: all labels of the fields; else only the labels with any of "
                                   "the checked tags (and only the samples that have one)")
        self.format = QComboBox()
        self.format.addItems(["coco", "fiftyone"])
        self.out = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.out, 1)
        layout.addWidget(browse)
        self.copy_images = QCheckBox("Copy images into the folder")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Sample tags", self.tags)
        form.addRow("Label fields", self.fields)
        form.addRow("Label tags", self.label_tags)
        form.addRow("Format", self.format)
        form.addRow("Folder (new or empty)", row)
        form.addRow(self.copy_images)
        form.addRow(self.summary)
        form.addRow(self.buttons)
        self.counts: dict | None = None
        self._recount = QTimer(self, singleShot=True, interval=120)  # one count after a burst of clicks
        self._recount.timeout.connect(self.update_counts)
        for widget in (self.tags, self.fields, self.label_tags):
            widget.itemChanged.connect(lambda _item: self._recount.start())
        self.out.textChanged.connect(lambda _text: self._sync_ok())
        self.update_counts()

    # ------------------------------------------------------------------ the selection
    def selection(self) -> tuple[list[str] | None, list[str] | None, list[str]]:
        """(sample tags or None for all, label tags or None for all, fields)."""
        return checked_names(self.tags) or None, checked_names(self.label_tags) or None, checked_names(self.fields)

    def view(self):
        from maskreview.core import export as ex

        tags, label_tags, fields = self.selection()
        return ex.select(self.dataset, tags, label_tags, fields)

    def problem(self) -> str | None:
        """Why this selection cannot be exported (``None``: it can)."""
        from maskreview.core import export as ex

        tags, label_tags, fields = self.selection()
        if not fields:
            return "Choose at least one label field."
        try:
            ex.check_matches(self.view(), tags, label_tags)
        except BadInputError as exc:
            return f"Nothing to export: {str(exc).split(': ', 1)[-1]}"
        return None

    def update_counts(self) -> None:
        from maskreview.core import export as ex

        problem = self.problem()
        if problem is None:
            self.counts = ex.counts(self.view(), self.selection()[2])
            labels = self.counts["labels"]
            per_field = ", ".join(f"{f} {n}" for f, n in labels.items())
            self.summary.setText(f"Will write {self.counts['samples']} samples and {sum(labels.values())} labels"
                                 f" ({per_field}).")
            self.summary.setStyleSheet("")
        else:
            self.counts = None
            self.summary.setText(problem)
            self.summary.setStyleSheet("color: #e5533d; font-weight: bold")
        self._sync_ok()

    def _sync_ok(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(self.counts is not None and bool(self.out.text().strip()))
        ok.setToolTip("" if self.counts is not None else self.summary.text())

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export into (a new or empty folder)")
        if path:
            self.out.setText(path)

    def _accept(self) -> None:
        self.update_counts()  # the dataset may have changed since the last count
        if self.counts is None:
            QMessageBox.warning(self, "Nothing to export", self.summary.text())
            return
        if self.out.text().strip():
            self.accept()

    def job_fn(self):
        """``fn(progress)`` for ``workers.Job``; returns the export report."""
        from maskreview.core import export as ex

        dataset = self.dataset
        tags, label_tags, fields = self.selection()
        fmt, out, copy = self.format.currentText(), self.out.text().strip(), self.copy_images.isChecked()

        def run(progress):
            view = ex.select(dataset, tags, label_tags, fields)
            ex.check_matches(view, tags, label_tags)  # refused with a message, nothing written
            return ex.export(view, out, fmt, field=fields, copy_images=copy, progress=progress)

        return run
