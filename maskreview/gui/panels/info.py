"""The Sample panel: the sample on show (file, size, tags, label counts, load errors) above the
Selection: the selected label, which Delete, relabel, tag keys and promote act on.

The hovered label goes to the status bar, never here (``gui.features.selection``).
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

NOTHING_SELECTED = ("Nothing selected. Click a label to select it (click the same spot again, or Tab, for the "
                    "one below); Delete, relabel, the tag keys and promote act on it.")


def _label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    return label


class SteadyHeight(QWidget):
    """Holds a word-wrapped rich-text QLabel (selectable as before) and asks its layout again only
    when the label's wrapped height changes.

    A QLabel's ``setText`` always calls ``updateGeometry``: in a layout, the Sample panel's rows
    (a new file name at every browse step) re-laid out its scroll area and painted the panel a
    second time each step. Here the label has no layout around it: its LayoutRequest comes to
    this holder, which passes it on only for another height; a new text of the same height is
    only repainted (the label's own ``update``)."""

    def __init__(self, label: QLabel, parent=None):
        super().__init__(parent)
        self.label = label
        label.setParent(self)
        self._height = -1

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self.label.heightForWidth(width) if not self.label.isHidden() else 0

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.label.sizeHint()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return self.label.minimumSizeHint()

    def resizeEvent(self, event) -> None:  # noqa: N802
        self._height = self.heightForWidth(event.size().width())
        self.label.setGeometry(0, 0, event.size().width(), max(event.size().height(), self._height))
        super().resizeEvent(event)

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:  # the label's updateGeometry
            if self.heightForWidth(self.width()) != self._height:
                self.updateGeometry()
            return True
        return super().event(event)


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
        layout.addWidget(SteadyHeight(self.sample_label))  # new text each browse step: no relayout
        layout.addWidget(self.error_label)
        layout.addWidget(title)
        layout.addWidget(SteadyHeight(self.selected_label))
        layout.addStretch(1)
        scroll = QScrollArea()  # the dock shares the column with others: the selection's rows scroll
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.error_label.hide()
        self._shown = None  # (data, counts) to show at the next turn of the event loop
        self._show_timer = QTimer(self, singleShot=True, interval=0, timeout=self._show_sample)

    def show_sample(self, data, counts: dict[str, tuple[int, int]] | None = None) -> None:
        """The rows follow at the next turn of the event loop (the last call's, if several come
        first): a browse step's canvas paints in a block of its own, and this panel's text,
        relayout and paint in the next one, with a timer's tick or an input event between them
        (issue 17's stall row: one block of the step and every panel's paint was ~20 ms)."""
        self._shown = (data, counts)
        self._show_timer.start()

    def _show_sample(self) -> None:
        data, counts = self._shown
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
