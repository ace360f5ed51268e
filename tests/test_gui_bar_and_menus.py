"""Window layout conventions (offscreen): the Samples dock's search box keeps a usable width with
every filter-bar control shown, and a filter going on does not widen the dock; File ▸ Quit is
the last entry, after a separator."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from helpers_gui import open_window
from maskreview.core.sources import open_source


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, fo, demo_coco):
    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    win = open_window(qtbot, tmp_path, open_source(demo_coco))
    yield win
    win.state.select(None)
    win.close()


def test_search_box_stays_usable_with_clear_filters_shown(window, qtbot):
    browser = window.browser
    assert browser.clear_button.isVisible() and not browser.clear_button.isEnabled()
    width = browser.minimumSizeHint().width()
    window.state.filters.search = "000"  # a filter on: Clear filters can be pressed
    qtbot.waitUntil(browser.clear_button.isEnabled)
    QApplication.processEvents()
    assert browser.minimumSizeHint().width() == width  # the dock does not widen (the canvas jumped)
    assert browser.tag_filter.isVisible()
    assert browser.search.width() >= 120, browser.search.width()
    # the button and the combos are not squeezed out of sight either
    assert browser.clear_button.width() >= browser.clear_button.minimumSizeHint().width()
    assert browser.search.geometry().right() <= browser.width()


def test_quit_is_the_last_file_entry_after_a_separator(window):
    entries = window.menus["File"].actions()
    assert entries[-1] is window.actions_["quit"]
    assert entries[-2].isSeparator()
    names = [a.text() for a in entries]
    assert any("Export tagged" in n for n in names) and any("recent" in n for n in names)
