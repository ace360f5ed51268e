"""The Sample panel: the sample on show (file, size, tags, label counts, load errors) above the
Selection: the selected label, which Delete, relabel, tag keys and promote act on.

The hovered label goes to the status bar, never here (``gui.features.selection``).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

NOTHING_SELECTED = ("Nothing selected. Click a label to select it (click the same spot again, or Tab, for the "
                    "one below); Delete, relabel, the tag keys and promote act on it.")


def _label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    return label


class SampleInfoPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.sample_label = _label("No sample")
        self.error_label = _label()
        self.error_label.setStyleSheet("color: #e0443e;")
        self.selected_label = _label(NOTHING_SELECTED)
        self.selected_label.setObjectName("selection")
        title = _label("<b>Selection</b>")
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.addWidget(self.sample_label)
        layout.addWidget(self.error_label)
        layout.addWidget(title)
        layout.addWidget(self.selected_label)
        layout.addStretch(1)
        scroll = QScrollArea()  # the dock shares the column with others: the selection's rows scroll
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
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

    def show_selection(self, rows: list[tuple[str, str]] | None) -> None:
        """The selected label as ``(what, value)`` rows (``core.review.describe``); None: nothing."""
        if not rows:
            self.selected_label.setText(NOTHING_SELECTED)
            return
        head, *rest = rows
        lines = [f"<b>{html.escape(head[1])}</b>"]
        lines += [f"<span style='color: gray'>{html.escape(what)}</span> {html.escape(value)}" for what, value in rest]
        self.selected_label.setText("<br>".join(lines))

    def selection_text(self) -> str:
        return self.selected_label.text()
