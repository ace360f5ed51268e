"""File → Export tagged…: choose tags, format and folder; the export itself runs as a Job.

Main window::

    dialog = ExportDialog(self.dataset, self)
    if dialog.exec():
        self.run_job(dialog.job_fn(), "export")     # workers.Job: progress, cancel, errors
"""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLineEdit, QPushButton, QWidget)

from maskreview.core.fields import GT_FIELD, ORIGINAL_SUFFIX


class ExportDialog(QDialog):
    def __init__(self, dataset, parent=None, field: str = GT_FIELD):
        super().__init__(parent)
        self.setWindowTitle("Export tagged samples")
        self.dataset = dataset
        tags = sorted(dataset.distinct("tags"))
        self.tags = QLineEdit(",".join(t for t in tags if t == "reviewed"))
        self.tags.setPlaceholderText("all samples; or tags, comma-separated: " + ", ".join(tags[:6]))
        self.label_tags = QLineEdit()
        self.label_tags.setPlaceholderText("all labels; or label tags, comma-separated")
        self.field = QComboBox()
        self.field.addItems([f for f, v in dataset.get_field_schema().items()
                             if getattr(v, "document_type", None) is not None
                             and v.document_type.__name__ == "Detections" and not f.endswith(ORIGINAL_SUFFIX)])
        if field in [self.field.itemText(i) for i in range(self.field.count())]:
            self.field.setCurrentText(field)
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
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Sample tags", self.tags)
        form.addRow("Label tags", self.label_tags)
        form.addRow("Label field", self.field)
        form.addRow("Format", self.format)
        form.addRow("Folder (new or empty)", row)
        form.addRow(self.copy_images)
        form.addRow(buttons)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export into (a new or empty folder)")
        if path:
            self.out.setText(path)

    def _accept(self) -> None:
        if self.out.text().strip():
            self.accept()

    def job_fn(self):
        """``fn(progress)`` for ``workers.Job``; returns the export report."""
        from maskreview.core import export as ex

        split = lambda text: [t.strip() for t in text.split(",") if t.strip()] or None  # noqa: E731
        dataset, field = self.dataset, self.field.currentText()
        tags, label_tags = split(self.tags.text()), split(self.label_tags.text())
        fmt, out, copy = self.format.currentText(), self.out.text().strip(), self.copy_images.isChecked()

        def run(progress):
            return ex.export(ex.select(dataset, tags, label_tags, field), out, fmt, field=field,
                             copy_images=copy, progress=progress)

        return run
