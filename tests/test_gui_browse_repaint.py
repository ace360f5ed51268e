"""A browse step repaints what changed and no more (issue 17, the stall row): the Overlays dock's
counts line no longer re-lays out the whole main window when its text changes, and the canvas
legend and the class histogram do not repaint when what they show is the same."""

from __future__ import annotations

import numpy as np
from helpers_gui import EventCount, settle, shown
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTextEdit


def test_a_new_counts_text_of_the_same_height_does_not_relayout_the_window(qtbot):
    from maskreview.gui.panels.fields import FieldsPanel

    win = QMainWindow()
    win.setCentralWidget(QTextEdit())
    panel = FieldsPanel()
    dock = QDockWidget("Overlays")
    dock.setWidget(panel)
    win.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    shown(qtbot, win, (900, 700))
    panel.set_counts({"ground_truth": (5, 5), "predictions": (3, 7)})
    settle(qtbot)
    one_line = panel.counts_label.height()
    assert one_line > 0
    relayouts = EventCount(QEvent.Type.LayoutRequest)
    win.installEventFilter(relayouts)
    for k in range(4):  # browse steps: other counts, the same one line
        panel.set_counts({"ground_truth": (k + 4, 9), "predictions": (k + 2, 8)})
        settle(qtbot)
    assert panel.counts_label.text() == "Visible: ground_truth 7/9, predictions 5/8"
    assert relayouts.n == 0  # a QLabel's setText re-laid out the docks and the window each time
    assert panel.counts_label.height() == one_line
    many = {f"a_long_field_name_{k}": (k, 10 * k) for k in range(12)}  # wraps: the line grows
    panel.set_counts(many)
    settle(qtbot)
    assert panel.counts_label.height() > 2 * one_line
    panel.set_counts({"ground_truth": (1, 1)})
    settle(qtbot)
    assert panel.counts_label.height() == one_line


def _canvas_with_sample(qtbot):
    from maskreview.gui.canvas.overlay import Instance
    from maskreview.gui.canvas.sample import SampleData
    from maskreview.gui.canvas.view import ImageCanvas

    canvas = shown(qtbot, ImageCanvas(), (600, 400))
    image = np.full((100, 150, 3), 90, np.uint8)
    insts = [Instance("predictions", "p1", "cat", 0.9, 10, 10, 30, 30, np.ones((30, 30), bool))]
    canvas.set_sample(SampleData("s1", "s1.png", image, None, 100, 150, {"predictions": insts}))
    settle(qtbot)
    return canvas


def test_the_legend_does_not_repaint_when_its_rows_are_the_same(qtbot):
    canvas = _canvas_with_sample(qtbot)
    legend = canvas.legend
    assert legend.isVisible() and legend.rows
    paints = EventCount(QEvent.Type.Paint)
    legend.installEventFilter(paints)
    for _ in range(3):
        legend.refresh()  # overlays_changed with the same fields and classes (a hover, a recount)
        settle(qtbot)
    assert paints.n == 0
    canvas.set_style(color_mode="field")  # other rows: repainted
    settle(qtbot)
    assert paints.n >= 1
    assert "dashed outline" in legend.rows[0].text


def test_an_empty_legend_stays_hidden(qtbot):
    from maskreview.gui.canvas.view import ImageCanvas

    canvas = shown(qtbot, ImageCanvas())
    assert not canvas.legend.isVisible()


def test_the_histogram_does_not_repaint_unchanged_counts(qtbot):
    from maskreview.gui.panels.histogram import ClassHistogram

    hist = shown(qtbot, ClassHistogram(), (300, 200))
    hist.set_counts({"predictions": {"cat": 3, "dog": 1}}, ["cat", "dog"])
    settle(qtbot)
    paints = EventCount(QEvent.Type.Paint)
    hist.installEventFilter(paints)
    hist.set_counts({"predictions": {"cat": 3, "dog": 1}}, ["cat", "dog"])  # recounted after a model batch
    settle(qtbot)
    assert paints.n == 0
    hist.set_counts({"predictions": {"cat": 4, "dog": 1}}, ["cat", "dog"])
    settle(qtbot)
    assert paints.n >= 1 and hist.counts["predictions"]["cat"] == 4


def test_the_loupe_repaints_without_its_dock_beneath(qtbot):
    """The loupe fills every pixel it paints, so a browse step's loupe update does not paint the
    dock behind it first (issue 17, the stall row: one dock paint less per step)."""
    from maskreview.gui.canvas.loupe import Loupe
    from maskreview.gui.canvas.view import ImageCanvas

    canvas = _canvas_with_sample(qtbot)
    win = QMainWindow()
    win.setCentralWidget(QTextEdit())
    loupe = Loupe(canvas)
    dock = QDockWidget("Loupe")
    dock.setWidget(loupe)
    win.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    shown(qtbot, win, (900, 700))
    settle(qtbot)
    docks, loupes = EventCount(QEvent.Type.Paint), EventCount(QEvent.Type.Paint)
    dock.installEventFilter(docks)
    loupe.installEventFilter(loupes)
    for k in range(3):
        loupe.follow(20 + k, 30)
        settle(qtbot)
    assert loupes.n >= 3 and docks.n == 0
    assert isinstance(canvas, ImageCanvas)
