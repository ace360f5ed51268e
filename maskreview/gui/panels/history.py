"""The undo history: every edit of the app session, across samples; click a row to go there."""

from __future__ import annotations

from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QDockWidget, QLabel, QUndoView, QVBoxLayout, QWidget


class HistoryPanel(QWidget):
    """A ``QUndoView`` on the app's undo stack, with a count of edits."""

    def __init__(self, stack: QUndoStack, parent=None):
        super().__init__(parent)
        self.stack = stack
        self.view = QUndoView(stack)
        self.view.setEmptyLabel("Opened (no edits yet)")
        self.count_label = QLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.count_label)
        stack.indexChanged.connect(self._update_count)
        self._update_count()

    def _update_count(self, *_):
        import shiboken6

        # The stack emits indexChanged while it is being destroyed with its window.
        if not (shiboken6.isValid(self.stack) and shiboken6.isValid(self.count_label)):
            return
        done, total = self.stack.index(), self.stack.count()
        self.count_label.setText(f"{done} of {total} edits applied" if total else "No edits yet")


def make_history_dock(stack: QUndoStack, parent=None) -> QDockWidget:
    dock = QDockWidget("History", parent)
    dock.setObjectName("history_dock")
    dock.setWidget(HistoryPanel(stack, dock))
    return dock
