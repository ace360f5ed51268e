"""A long status-bar message beside a job's progress ends in "…" (whole text in the tooltip)
instead of being cut mid-word under the progress widget."""

from __future__ import annotations

from helpers_gui import open_window
from maskreview.core.sources import open_source


def test_a_long_message_beside_the_progress_is_elided_not_cut(qtbot, fo, demo_coco, tmp_path):
    from maskreview.gui import workers

    win = open_window(qtbot, tmp_path, open_source(demo_coco), (900, 600))
    try:
        job = workers.Job(lambda progress: None, "a job with a long name")
        win.progress.track(job)  # shown as if running; never started
        bar = win.statusBar()
        qtbot.waitUntil(lambda: win.progress.isVisible())
        text = "3/580 missing label (0.86): " + "confident prediction (circle 0.87) with no ground truth " * 3
        bar.showMessage(text)
        assert bar.currentMessage() == text  # what tests and signals see is whole
        rect = bar.message_rect()
        assert 0 < rect.right() < win.progress.x()
        qtbot.waitUntil(lambda: bar.toolTip() == text)  # set when drawn elided
        shown = bar.shown_message()
        assert shown.endswith("…") and shown[:-1] in text
        assert bar.fontMetrics().horizontalAdvance(shown) <= rect.width()
        bar.showMessage("short")
        qtbot.waitUntil(lambda: bar.toolTip() == "")
        assert bar.shown_message() == "short"
    finally:
        win.close()
