"""Desktop conventions in the real window (offscreen): command palette, shortcut sheet, Ctrl+Y,
Home/End, Settings applied live and kept, theme, reopening at the last sample, About."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QPalette
from PySide6.QtWidgets import QApplication

from helpers_gui import open_window
from maskreview.core.sources import open_source


@pytest.fixture
def config(tmp_path, monkeypatch):
    """A private config dir (verdict_keys.json, tag_keys.json) and the system theme."""
    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("MASKREVIEW_THEME", raising=False)
    return tmp_path / "config"


@pytest.fixture
def dataset(fo, demo_coco):
    return open_source(demo_coco)


def _close(win) -> None:
    win.state.select(None)  # nothing left for the Selection panel to read once the dataset is gone
    win.close()


@pytest.fixture
def window(qtbot, config, dataset, tmp_path):
    win = open_window(qtbot, tmp_path, dataset)
    _activate(qtbot, win)
    yield win
    _close(win)


def _activate(qtbot, win) -> None:
    QApplication.setActiveWindow(win)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow)
    win.canvas.setFocus()


def _restart(qtbot, win, tmp_path, dataset):
    """Close ``win`` and open a new window on the same settings file and dataset (as a restart does)."""
    _close(win)
    again = open_window(qtbot, tmp_path, dataset)
    _activate(qtbot, again)
    return again


def test_palette_finds_and_runs_an_action_by_a_fuzzy_query(window, qtbot):
    from maskreview.gui.palette import commands

    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    palette = window.features.desktop.palette
    assert palette is not None and palette.isVisible()
    qtbot.keyClicks(palette.search, "lst smpl")
    assert palette.current().text == "Last sample"
    assert palette.current().keys == "End"
    qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert not palette.isVisible()
    assert window.current_sample_id == window.state.sample_ids[-1]
    # every menu entry (dock toggles and recent datasets aside, which are not actions of the app) is there
    found = {id(c.action) for c in commands(window)}
    for name, action in window.actions_.items():
        assert id(action) in found, name
    texts = [c.title for c in commands(window)]
    assert "Edit: Undo" in texts and "Review: Verdict: accept" in texts and "Tags" not in texts


def _shown_rows(sheet) -> list[tuple[str, ...]]:
    table = sheet.table
    return [tuple(table.item(r, c).text() for c in range(3)) for r in range(table.rowCount()) if not table.isRowHidden(r)]


def test_shortcut_sheet_lists_undo_redo_and_filters(window, qtbot):
    qtbot.keyClick(window, Qt.Key.Key_F1)
    sheet = window._sheet
    assert sheet.isVisible()
    rows = _shown_rows(sheet)
    assert ("Edit", "Undo", "Ctrl+Z") in rows
    assert ("Edit", "Redo", "Ctrl+Shift+Z, Ctrl+Y") in rows
    assert ("Tags", "Tag 'fp'", "1") in rows and ("Review", "Verdict: accept", "Y") in rows
    qtbot.keyClicks(sheet.filter, "redo")
    assert _shown_rows(sheet) == [("Edit", "Redo", "Ctrl+Shift+Z, Ctrl+Y")]
    sheet.filter.setText("ctrl+y")
    assert [r[1] for r in _shown_rows(sheet)] == ["Redo"]
    sheet.filter.setText("edit undo")
    assert [r[1] for r in _shown_rows(sheet)] == ["Undo"]


def test_keys_are_one_scheme_without_clashes(window):
    keys = [s.toString() for a in window.actions() for s in a.shortcuts()]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    tags = {n: window.actions_[n].shortcut().toString() for n in window.actions_ if n.startswith("tag_")}
    assert tags == {"tag_fp": "1", "tag_missed": "2", "tag_bad-boundary": "3", "tag_wrong-class": "4",
                    "tag_reviewed": "R"}
    assert window.actions_["command_palette"].shortcut().toString() == "Ctrl+Shift+P"


def test_ctrl_y_redoes(window, qtbot):
    sid = window.current_sample_id
    qtbot.keyClick(window.canvas, Qt.Key.Key_R)  # tag the sample 'reviewed'
    assert window.dataset.select(sid).values("tags") == [["reviewed"]], window.edits_failed
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.dataset.select(sid).values("tags") == [[]]
    qtbot.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert window.dataset.select(sid).values("tags") == [["reviewed"]]
    assert window.undo_stack.index() == 1


def test_home_and_end_go_to_the_first_and_last_sample(window, qtbot):
    ids = window.state.sample_ids
    qtbot.keyClick(window, Qt.Key.Key_D)
    assert window.current_sample_id == ids[1]
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.current_sample_id == ids[-1]
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.current_sample_id == ids[0]


def test_a_key_changed_in_settings_works_at_once_and_after_a_restart(window, qtbot, tmp_path, dataset, config):
    window.actions_["settings"].trigger()
    dialog = window.features.desktop.settings_dialog
    keys = dialog.keys
    keys.filter.setText("next sample")
    keys.select("next_sample")
    keys.key_edit.setKeySequence(QKeySequence("W"))
    qtbot.mouseClick(keys.set_button, Qt.MouseButton.LeftButton)
    keys.select("tag_fp")  # a tag key ...
    keys.key_edit.setKeySequence(QKeySequence("7"))
    qtbot.mouseClick(keys.set_button, Qt.MouseButton.LeftButton)
    keys.select("verdict_skip")  # ... and a verdict key
    keys.key_edit.setKeySequence(QKeySequence("Y"))  # taken by accept: refused
    qtbot.mouseClick(keys.set_button, Qt.MouseButton.LeftButton)
    assert "Verdict: accept" in keys.message.text()
    keys.key_edit.setKeySequence(QKeySequence("U"))
    qtbot.mouseClick(keys.set_button, Qt.MouseButton.LeftButton)
    dialog.close()
    _activate(qtbot, window)

    ids = window.state.sample_ids
    qtbot.keyClick(window, Qt.Key.Key_W)
    assert window.current_sample_id == ids[1]
    qtbot.keyClick(window.canvas, Qt.Key.Key_7)
    assert window.dataset.select(ids[1]).values("tags") == [["fp"]], window.edits_failed
    assert window.features.review_queue.keys["skip"] == "U"

    again = _restart(qtbot, window, tmp_path, dataset)
    try:
        assert again.actions_["next_sample"].shortcuts()[0].toString() == "W"
        assert again.actions_["tag_fp"].shortcut().toString() == "7"
        assert again.actions_["verdict_skip"].shortcut().toString() == "U"
        assert again.actions_["queue_previous"].shortcut().toString() == "Shift+U"
        start = again.current_sample_id
        qtbot.keyClick(again, Qt.Key.Key_W)
        assert again.current_sample_id == ids[ids.index(start) + 1]
    finally:
        _close(again)


def test_theme_applies_live_and_is_kept(window, qtbot, tmp_path, dataset):
    app = QApplication.instance()
    window.actions_["settings"].trigger()
    theme = window.features.desktop.settings_dialog.appearance.theme
    try:
        theme.setCurrentText("Dark")
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
        theme.setCurrentText("Light")
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
        theme.setCurrentText("Dark")
        window.features.desktop.settings_dialog.close()
        again = _restart(qtbot, window, tmp_path, dataset)
        assert again.settings.theme() == "dark"
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
        _close(again)
    finally:
        from maskreview.gui.app import apply_palette

        apply_palette(app, "system")


def test_colour_change_applies_live(window, qtbot):
    from PySide6.QtGui import QColor

    from maskreview.gui.canvas import overlay

    window.actions_["settings"].trigger()
    tab = window.features.desktop.settings_dialog.appearance
    try:
        tab.choose("fp", QColor(10, 20, 30))
        assert overlay.EVAL_COLORS["fp"] == (10, 20, 30)
        assert window.settings.colors()["fp"] == (10, 20, 30)
    finally:
        tab.reset()
    assert overlay.EVAL_COLORS["fp"] == (255, 65, 54)


def test_default_thresholds_apply_live_and_at_start(window, qtbot, tmp_path, dataset):
    window.actions_["settings"].trigger()
    tab = window.features.desktop.settings_dialog.defaults
    tab.confidence.setValue(0.8)
    tab.iou.setValue(0.65)
    assert window.state.thresholds.confidence == pytest.approx(0.8)
    assert window.state.thresholds.iou == pytest.approx(0.65)
    window.features.desktop.settings_dialog.close()
    again = _restart(qtbot, window, tmp_path, dataset)
    try:
        assert again.state.thresholds.iou == pytest.approx(0.65)
        assert again.state.thresholds.confidence == pytest.approx(0.8)
    finally:
        _close(again)


def test_reopens_at_the_last_viewed_sample(window, qtbot, tmp_path, dataset):
    ids = window.state.sample_ids
    window.browser.select_id(ids[5])
    assert window.current_sample_id == ids[5]
    again = _restart(qtbot, window, tmp_path, dataset)
    try:
        assert again.current_sample_id == ids[5]
    finally:
        _close(again)


def test_about_shows_versions_and_dirs(window, qtbot, config):
    from importlib.metadata import version

    from maskreview import __version__

    window.actions_["about"].trigger()
    about = window.features.desktop.about_dialog
    assert about.isVisible()
    text = about.label.text()
    assert f"maskreview {__version__}" in text
    assert version("PySide6_Essentials") in text and version("fiftyone") in text
    assert str(config) in text
    assert "detectron2" in about.text()


def test_about_reads_versions_without_importing_torch():
    code = ("import sys; from maskreview.gui.dialogs.about import about_rows; rows = dict(about_rows()); "
            "print(rows['detectron2'] != 'not installed', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(),
                         timeout=120, check=True).stdout.split()
    assert out == ["True", "False"]


def test_about_finds_its_libraries_without_scanning_every_package(monkeypatch):
    """packages_distributions() reads every installed package's file list: 6 s on a busy machine,
    the window frozen before About showed (and the keys typed meanwhile landed in it)."""
    from importlib import metadata

    from maskreview.gui.dialogs import about

    def scan():
        raise AssertionError("About scanned every installed package")

    about._distributions_of_imports.cache_clear()
    monkeypatch.setattr(metadata, "packages_distributions", scan)
    rows = dict(about.about_rows())
    assert all(rows[name] != "not installed" for name in about.LIBRARIES), rows
