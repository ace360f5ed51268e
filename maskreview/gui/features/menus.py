"""Actions and menus a feature adds to the window (listed in the shortcut sheet), and every key of
an action named in its menu (Qt's menus name the first only: Keyboard shortcuts has ``?`` and F1)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from maskreview.gui import actions as acts
from maskreview.gui.actions import ActionSpec


def taken_shortcuts(window) -> set[str]:
    return {s.toString() for action in window.actions() for s in action.shortcuts()}


def add_action(window, spec: ActionSpec, handler, menu) -> QAction:
    """A QAction for ``spec`` (listed in the shortcut sheet), connected to ``handler``, in ``menu``."""
    acts.EXTRA[spec.name] = spec
    action = QAction(acts.icon(spec.icon), spec.text, window)
    action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    tip = (spec.tip or spec.text.replace("&", "")) + (f" ({', '.join(spec.shortcuts)})" if spec.shortcuts else "")
    action.setToolTip(tip)
    action.setStatusTip(tip)
    action.setCheckable(spec.checkable)
    action.triggered.connect(lambda checked=False: handler())
    window.addAction(action)
    menu.addAction(action)
    window.actions_[spec.name] = action
    return action


def menu(window, title: str) -> QMenu:
    """The window's menu ``title``, made before Help if it is new."""
    if title not in window.menus:
        window.menus[title] = window.menuBar().insertMenu(window.menus["Help"].menuAction(),
                                                          QMenu(title, window)).menu()
    return window.menus[title]


def name_every_key(window) -> None:
    """Each menu of the window (and its submenus), while open, names all the keys of an action
    with several (``Keyboard shortcuts  ?, F1``), as they are now (Settings may change them).
    Outside the open menu the actions keep their own text (the palette and Settings read it)."""

    def walk(m: QMenu) -> None:
        _name_keys_when_open(m)
        for action in m.actions():
            if action.menu() is not None:
                walk(action.menu())

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu())


def _name_keys_when_open(m: QMenu) -> None:
    if m.property("maskreview_every_key"):
        return
    m.setProperty("maskreview_every_key", True)
    shown: dict[int, tuple[QAction, str, str]] = {}

    def opening() -> None:
        for action in m.actions():
            keys, text = action.shortcuts(), action.text()
            if len(keys) > 1 and "\t" not in text:  # a tab: Qt draws what follows as the keys
                named = text + "\t" + ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
                action.setText(named)
                shown[id(action)] = (action, text, named)

    def closing() -> None:
        for action, text, named in shown.values():
            if action.text() == named:  # not renamed meanwhile (the undo stack names its step)
                action.setText(text)
        shown.clear()

    m.aboutToShow.connect(opening)
    m.aboutToHide.connect(closing)
