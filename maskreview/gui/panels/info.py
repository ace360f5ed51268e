"""Sample info: file, size, tags, label counts, load errors, and the instance under the cursor."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class SampleInfoPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.sample_label = QLabel("No sample")
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #e0443e;")
        self.instance_label = QLabel("Hover an instance to see its class, score, area and IoU.")
        self.selected_label = QLabel()
        for label in (self.sample_label, self.error_label, self.instance_label, self.selected_label):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(self)
        layout.addWidget(self.sample_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.instance_label)
        layout.addWidget(self.selected_label)
        layout.addStretch(1)
        self.error_label.hide()

    def show_sample(self, data, counts: dict[str, tuple[int, int]] | None = None) -> None:
        if data is None:
            self.sample_label.setText("No sample")
            self.error_label.hide()
            return
        name = html.escape(data.filepath.rsplit("/", 1)[-1])
        rows = [f"<b>{name}</b>" + (" <i>(scratch, not in the dataset)</i>" if data.scratch else ""),
                f"{data.width} × {data.height} px", html.escape(data.filepath)]
        if data.tags:
            rows.append("tags: " + html.escape(", ".join(data.tags)))
        for field, (vis, total) in (counts or {}).items():
            rows.append(f"{html.escape(field)}: {vis} shown of {total}")
        self.sample_label.setText("<br>".join(rows))
        self.error_label.setVisible(bool(data.error))
        self.error_label.setText(f"Cannot show this image: {data.error}" if data.error else "")

    def show_instance(self, inst, match=None, iou=None) -> None:
        if inst is None:
            self.instance_label.setText("")
            return
        rows = [f"<b>{html.escape(inst.label)}</b> in <i>{html.escape(inst.field)}</i>"]
        if inst.score is not None:
            rows.append(f"score {inst.score:.3f}")
        rows.append(f"area {inst.area} px, box {inst.w}×{inst.h} at ({inst.x0}, {inst.y0})")
        if inst.eval:
            rows.append(f"evaluation: {inst.eval.upper()}")
        if iou is not None:
            other = f"{html.escape(match.label)} in {html.escape(match.field)}" if match is not None else "its match"
            rows.append(f"IoU {iou:.3f} with {other}")
        elif match is None:
            rows.append("no overlapping match")
        self.instance_label.setText("<br>".join(rows))

    def show_selected(self, inst, record: dict | None = None) -> None:
        """The selected label: class, field, score and the model that predicted it (its record)."""
        if inst is None:
            self.selected_label.setText("")
            return
        rows = [f"<b>Selected:</b> {html.escape(inst.label)} in <i>{html.escape(inst.field)}</i>"]
        if inst.score is not None:
            rows.append(f"score {inst.score:.3f}")
        if record:
            from maskreview.core.model.provenance import model_label

            rows.append(f"predicted by {html.escape(model_label(record))}")
            if record.get("finished") or record.get("started"):
                rows.append(f"run {html.escape(str(record.get('finished') or record.get('started')))}")
        elif inst.score is None:
            rows.append("no model score (a label drawn or imported, not predicted)")
        self.selected_label.setText("<br>".join(rows))
