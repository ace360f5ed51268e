"""The status bar's progress: a job's end hides it only while that job is the one shown."""

from __future__ import annotations

import threading
import time


def test_a_job_ending_after_the_next_was_tracked_leaves_the_next_ones_progress(qtbot, qapp):
    """Opening the demo: the open job's result starts the automatic model run (tracked at once),
    then the open job ends. The run's bar stays and follows the run's progress events."""
    from maskreview.gui.workers import Job, ProgressWidget

    widget = ProgressWidget()
    widget.show()
    qtbot.addWidget(widget)
    go_on = threading.Event()

    def opening(progress):
        progress.start(2, "writing dataset")
        progress.advance(2)

    def run(progress):
        progress.start(10, "predicting")
        time.sleep(0.1)  # updates are throttled to one per 0.05 s
        progress.advance(3)
        go_on.wait(20)
        progress.advance(7)

    first, second = Job(opening, "open dataset"), Job(run, "inference (demo)")
    first.succeeded.connect(lambda _result: (widget.track(second), second.start()))  # as set_dataset does
    widget.track(first)
    first.start()
    qtbot.waitUntil(lambda: first.isFinished() and widget.bar.value() == 3, timeout=20000)
    qtbot.wait(50)  # the first job's finished is delivered
    assert widget.isVisible() and widget.job is second
    assert widget.label.text() == "predicting" and widget.bar.format() == "3/10"
    go_on.set()
    qtbot.waitUntil(lambda: not widget.isVisible(), timeout=20000)
    assert widget.job is None
