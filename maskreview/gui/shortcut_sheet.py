"""Help ▸ Keyboard shortcuts (F1, ``?``): every declared action with the keys it has now, and the
canvas keys that are not actions, filtered as you type."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QHeaderView, QLineEdit, QTableWidget, QTableWidgetItem, QVBoxLayout

from maskreview.gui import actions as acts


def shortcut_rows(window=None) -> list[tuple[str, str, str]]:
    """``(group, action, keys)`` for every declared action with keys (the window's current keys, so a
    key changed in Settings shows), then the canvas hints."""
    rows = []
    live = getattr(window, "actions_", {}) if window is not None else {}
    for spec in [*acts.ACTIONS, *acts.EXTRA.values()]:
        action = live.get(spec.name)
        keys = [k.toString() for k in action.shortcuts()] if action is not None else list(spec.shortcuts)
        if keys:
            rows.append((spec.menu, spec.text.replace("&", ""), ", ".join(keys)))
    return rows + list(acts.KEY_HINTS)


class ShortcutSheet(QDialog):
    """The sheet: a filter box over a table of group, action and keys."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.filter = QLineEdit(placeholderText="Filter: action, group or key (e.g. undo, tag, Ctrl+)")
        self.filter.setClearButtonEnabled(True)
        rows = shortcut_rows(parent)
        table = QTableWidget(len(rows), 3)
        table.setHorizontalHeaderLabels(["Group", "Action", "Keys"])
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                table.setItem(r, c, QTableWidgetItem(text))
        table.verticalHeader().hide()
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)  # keys stay in view; long text wraps
        table.setWordWrap(True)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(table)
        self.table = table
        self.filter.textChanged.connect(self.apply_filter)
        self.resize(760, 680)
        table.resizeRowsToContents()
        self.filter.setFocus()

    def apply_filter(self, text: str) -> None:
        words = text.lower().split()
        for r in range(self.table.rowCount()):
            row = " ".join(self.table.item(r, c).text() for c in range(3)).lower()
            self.table.setRowHidden(r, not all(w in row for w in words))

    def visible_rows(self) -> list[tuple[str, str, str]]:
        return [tuple(self.table.item(r, c).text() for c in range(3))
                for r in range(self.table.rowCount()) if not self.table.isRowHidden(r)]
