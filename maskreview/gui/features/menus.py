"""Actions and menus a feature adds to the window (listed in the shortcut sheet)."""

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
