"""The Sample panel's rows change at every browse step; a new text of the same wrapped height
repaints the label and re-lays out nothing (issue 17, the stall row: a QLabel's setText re-laid
out the panel's scroll area and painted it a second time each step). Another height still
resizes the row, and the text stays selectable."""

from __future__ import annotations

from types import SimpleNamespace

from helpers_gui import EventCount, settle, shown
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QScrollArea, QTextEdit


def _sample(k: int, tags=()):
    return SimpleNamespace(filepath=f"/data/images/scene_{k:04d}.png", scratch=False, width=640, height=480,
                           tags=list(tags), error=None)


def test_a_new_sample_text_of_the_same_height_does_not_relayout_the_panel(qtbot):
    from maskreview.gui.panels.info import SampleInfoPanel

    win = QMainWindow()
    win.setCentralWidget(QTextEdit())
    panel = SampleInfoPanel()
    dock = QDockWidget("Sample")
    dock.setWidget(panel)
    win.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    shown(qtbot, win, (900, 700))
    counts = {"ground_truth": (5, 5), "predictions": (3, 7)}
    panel.show_sample(_sample(0), counts)
    settle(qtbot)
    label = panel.sample_label
    height = label.height()
    assert height > 0 and label.isVisible()
    inner = panel.findChild(QScrollArea).widget()
    relayouts, window_relayouts = EventCount(QEvent.Type.LayoutRequest), EventCount(QEvent.Type.LayoutRequest)
    inner.installEventFilter(relayouts)
    win.installEventFilter(window_relayouts)
    for k in range(1, 5):  # browse steps: another file, the same number of lines
        panel.show_sample(_sample(k), {"ground_truth": (k, 5), "predictions": (k + 1, 7)})
        settle(qtbot)
    assert "scene_0004.png" in label.text() and "predictions: 5 shown of 7" in label.text()
    assert relayouts.n == 0 and window_relayouts.n == 0  # a QLabel in the layout: each step re-laid out
    assert label.height() == height
    assert label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    many = [f"a_rather_long_tag_name_{k}" for k in range(12)]  # wraps over several lines: the row grows
    panel.show_sample(_sample(5, many), counts)
    settle(qtbot)
    assert relayouts.n >= 1
    assert label.height() > height + 2 * label.fontMetrics().height()
    assert label.height() >= label.heightForWidth(label.width())  # no line cut off
    panel.show_sample(_sample(6), counts)
    settle(qtbot)
    assert label.height() == height
    panel.show_selection([("label", "cat"), ("score", "0.91")])  # the selection rows grow too
    settle(qtbot)
    assert "cat" in panel.selection_text()
    sel = panel.selected_label
    assert sel.height() >= sel.heightForWidth(sel.width()) > 0
