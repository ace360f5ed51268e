"""Menus name every key of an action (Help ▸ Keyboard shortcuts opens with ? and F1)."""

from __future__ import annotations

from PySide6.QtCore import QPoint

from helpers_gui import open_window
from maskreview.core.sources import open_source


def test_an_open_menu_names_every_key_and_the_action_keeps_its_text(qtbot, tmp_path, fo, demo_coco, monkeypatch):
    from maskreview.gui import keymap
    from maskreview.gui.palette import commands

    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    win = open_window(qtbot, tmp_path, open_source(demo_coco))
    try:
        action, help_menu = win.actions_["shortcuts"], win.menus["Help"]
        plain = action.text()
        help_menu.popup(win.mapToGlobal(QPoint(20, 20)))
        qtbot.waitUntil(help_menu.isVisible)
        assert action.text().split("\t")[1] == "?, F1"  # Qt draws the part after the tab as the keys
        edit = win.edit_menu
        help_menu.hide()
        assert action.text() == plain and "\t" not in plain
        assert all("\t" not in c.text for c in commands(win))  # the palette's names stay clean
        keymap.set_action_keys(win, "shortcuts", ("F1", "Ctrl+F1"))  # keys changed in Settings: named as they are
        help_menu.popup(win.mapToGlobal(QPoint(20, 20)))
        qtbot.waitUntil(help_menu.isVisible)
        assert action.text().endswith("\tF1, Ctrl+F1")
        help_menu.hide()
        edit.popup(win.mapToGlobal(QPoint(20, 20)))  # other menus too (redo: Ctrl+Shift+Z and Ctrl+Y)
        qtbot.waitUntil(edit.isVisible)
        assert "Ctrl+Y" in win.actions_["redo"].text().split("\t")[-1]
        edit.hide()
    finally:
        win.state.select(None)
        win.close()
