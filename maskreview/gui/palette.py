"""The command palette (Ctrl+Shift+P): type a few letters of any action, Enter runs it.

Lists every action of the menu bar (walked, so a menu entry is never missing) and every declared
action (``window.actions_``: the main window's and the features'), with its menu and keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout

from maskreview.gui.actions import spec_of


@dataclass
class Command:
    action: QAction
    text: str  # without mnemonics
    group: str  # the menu path, e.g. "Edit" or "View ▸ Open recent"

    @property
    def keys(self) -> str:
        return ", ".join(k.toString() for k in self.action.shortcuts())

    @property
    def title(self) -> str:
        return f"{self.group}: {self.text}" if self.group else self.text


def fuzzy_score(query: str, text: str) -> float | None:
    """How well ``query``'s characters match ``text`` in order (None: they do not); word starts and
    runs of consecutive characters count more, so "sht" ranks "Show tags" above "push to"."""
    query, text = query.lower().replace(" ", ""), text.lower()
    if not query:
        return 0.0
    score, pos, run = 0.0, 0, 0
    for ch in query:
        found = text.find(ch, pos)
        if found < 0:
            return None
        at_word = found == 0 or not text[found - 1].isalnum()
        run = run + 1 if found == pos and pos > 0 else 0
        score += 1.0 + 2.0 * at_word + 1.5 * run - 0.05 * (found - pos)
        pos = found + 1
    return score - 0.01 * len(text)


def _clean(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").replace("…", "").strip()


def commands(window) -> list[Command]:
    """Every runnable action: the menus' (in menu order), then declared ones no menu holds."""
    out, seen = [], set()

    def walk(menu, path):
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu(), [*path, _clean(action.menu().title())])
            elif not action.isSeparator() and action.text() and id(action) not in seen:
                seen.add(id(action))
                out.append(Command(action, _clean(action.text()), " ▸ ".join(path)))

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), [_clean(top.menu().title())])
    for name, action in getattr(window, "actions_", {}).items():
        if id(action) not in seen:
            spec = spec_of(name)
            seen.add(id(action))
            out.append(Command(action, _clean(action.text()), spec.menu if spec else ""))
    return out


def ranked(query: str, items: list[Command]) -> list[Command]:
    """``items`` matching ``query`` (title or keys), best first; all of them, in order, for no query."""
    if not query.strip():
        return list(items)
    scored = []
    for i, cmd in enumerate(items):
        score = fuzzy_score(query, cmd.title)
        if score is None and cmd.keys and query.strip().lower() in cmd.keys.lower():
            score = 0.5  # typed a key ("ctrl+y"): what it does
        if score is not None:
            scored.append((-score, i, cmd))
    return [cmd for *_, cmd in sorted(scored, key=lambda t: (t[0], t[1]))]


class CommandPalette(QDialog):
    """A search box over the commands; Up/Down choose, Enter runs, Esc closes."""

    def __init__(self, window):
        super().__init__(window)
        self.setWindowTitle("Command palette")
        self.window_ = window
        self.items = commands(window)
        self.search = QLineEdit(placeholderText="Type an action (fuzzy: “rdo” finds Redo), Enter runs it")
        self.list = QListWidget()
        self.list.setUniformItemSizes(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.search.textChanged.connect(self.refill)
        self.search.returnPressed.connect(self.run_current)
        self.list.itemActivated.connect(lambda _item: self.run_current())
        self.search.installEventFilter(self)
        self.resize(640, 420)
        if window.isVisible():
            top = window.geometry()
            self.move(top.center().x() - 320, top.top() + 60)
        self.refill("")
        self.search.setFocus()

    def refill(self, text: str) -> None:
        self.list.clear()
        for cmd in ranked(text, self.items):
            item = QListWidgetItem(f"{cmd.title}" + (f"    [{cmd.keys}]" if cmd.keys else ""))
            item.setData(Qt.ItemDataRole.UserRole, cmd)
            if not cmd.action.isEnabled():
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setText(item.text() + "  (not available now)")
            self.list.addItem(item)
        for row in range(self.list.count()):  # the best enabled one
            if self.list.item(row).flags() & Qt.ItemFlag.ItemIsEnabled:
                self.list.setCurrentRow(row)
                break

    def shown(self) -> list[Command]:
        return [self.list.item(r).data(Qt.ItemDataRole.UserRole) for r in range(self.list.count())]

    def current(self) -> Command | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def run_current(self) -> None:
        cmd = self.current()
        self.accept()
        if cmd is not None and cmd.action.isEnabled():
            cmd.action.trigger()

    def eventFilter(self, obj, event) -> bool:
        if obj is self.search and event.type() == event.Type.KeyPress and event.key() in (
                Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown):
            self.list.keyPressEvent(event)  # arrows move the choice while typing goes on in the box
            return True
        return super().eventFilter(obj, event)
