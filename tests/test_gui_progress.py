"""The status bar's progress: a job's end hides it only while that job is the one shown."""

from __future__ import annotations

import threading
import time

import pytest


@pytest.fixture
def widget(qtbot, qapp):
    from maskreview.gui.workers import ProgressWidget

    w = ProgressWidget()
    w.show()
    qtbot.addWidget(w)
    return w


def test_a_job_ending_after_the_next_was_tracked_leaves_the_next_ones_progress(qtbot, widget):
    """Opening the demo: the open job's result starts the automatic model run (tracked at once),
    then the open job ends. The run's bar stays and follows the run's progress events."""
    from maskreview.gui.workers import Job

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


def test_a_job_started_during_another_hands_the_bar_back_when_it_ends(qtbot, widget):
    """An evaluation runs; a model run starts and ends meanwhile: the evaluation's bar, its
    progress and its Cancel come back instead of the bar going away while it still runs."""
    from maskreview.gui.workers import Job

    run_may_end = threading.Event()

    def evaluation(progress):
        progress.start(10, "evaluating")
        time.sleep(0.1)
        progress.advance(4)
        for _ in range(400):
            progress.check()  # until Cancel
            time.sleep(0.05)

    def run(progress):
        progress.start(2, "predicting")
        run_may_end.wait(20)

    first, second = Job(evaluation, "evaluation"), Job(run, "inference (demo)")
    widget.track(first)
    first.start()
    qtbot.waitUntil(lambda: widget.bar.format() == "4/10", timeout=20000)
    widget.track(second)
    second.start()
    assert widget.job is second
    run_may_end.set()
    qtbot.waitUntil(second.isFinished, timeout=20000)
    qtbot.waitUntil(lambda: widget.job is first, timeout=5000)
    assert widget.isVisible() and widget.label.text() == "evaluating" and widget.bar.format() == "4/10"
    with qtbot.waitSignal(first.failed, timeout=20000) as failed:
        widget.cancel_button.click()
    assert failed.args[1] == "cancelled"
    qtbot.waitUntil(lambda: not widget.isVisible(), timeout=20000)
