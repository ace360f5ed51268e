"""Tags of the current sample: add and remove (written to the dataset by the main window)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QListWidget, QPushButton, QVBoxLayout, QWidget


class TagsPanel(QWidget):
    add_requested = Signal(str)
    remove_requested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tag_list = QListWidget()
        self.entry = QLineEdit()
        self.entry.setPlaceholderText("Add a tag and press Enter")
        self.remove_button = QPushButton("Remove")
        row = QHBoxLayout()
        row.addWidget(self.entry, 1)
        row.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tag_list)
        layout.addLayout(row)
        self.entry.returnPressed.connect(self._add)
        self.remove_button.clicked.connect(self._remove)
        self.setEnabled(False)

    def show_tags(self, tags, enabled: bool = True) -> None:
        """The list refilled only when the tags differ: a browse step or an edit that leaves them
        alone keeps the reviewer's current tag (what Remove acts on) and costs no relayout."""
        tags = list(tags)
        if tags != [self.tag_list.item(i).text() for i in range(self.tag_list.count())]:
            self.tag_list.clear()
            self.tag_list.addItems(tags)
        self.setEnabled(enabled)

    def _add(self) -> None:
        tag = self.entry.text().strip()
        if tag:
            self.entry.clear()
            self.add_requested.emit(tag)

    def _remove(self) -> None:
        item = self.tag_list.currentItem()
        if item is not None:
            self.remove_requested.emit(item.text())
