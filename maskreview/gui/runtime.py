"""Process-wide settings the Qt layer needs, made once by whoever starts Qt (``app.create_app``,
the test suite's ``conftest``), not when a module of the GUI is imported."""

from __future__ import annotations

import sys

_done = False


def prepare_process() -> None:
    """Make this process fit for a long PySide6 session (idempotent)."""
    global _done
    if _done:
        return
    _done = True
    if sys.version_info < (3, 12):
        # PySide6 6.12 returns None from every void method (QPainter.drawRect, QWidget.update,
        # processEvents, ...) without a new reference, so each call takes one reference from None;
        # after some tens of thousands of calls CPython aborts with "none_dealloc". Python 3.12+
        # makes None immortal; on 3.11 we give it a reserve no session can spend (2**50 calls).
        import ctypes  # only on 3.11

        ctypes.c_ssize_t.from_address(id(None)).value += 1 << 50
        # The same for True: every ``Signal.emit`` takes one reference from it ("bool_dealloc"
        # after ~1,000 emits; invalidating 100,000 thumbnails aborted the window, #17.4).
        for value in (True, False):
            ctypes.c_ssize_t.from_address(id(value)).value += 1 << 50
    # Inference, thumbnails and writes run on worker threads that hold the GIL between their C
    # calls; with the default 5 ms switch interval the event loop waited too long at p99 (bench_gui
    # --only stall, BENCHMARKS.md). 1 ms hands the GIL back to the GUI thread sooner at no
    # measured throughput cost.
    sys.setswitchinterval(0.001)


class GuiThreadCollector:
    """Python's cyclic garbage collector, run from the GUI thread's event loop only.

    Left automatic, a collection runs in whichever thread allocates when a threshold is crossed:
    a thumbnail, layer or read-ahead worker then destroys the Qt objects of a closed canvas or
    dialog off the GUI thread, their timers cannot be stopped there ("QBasicTimer::stop: Failed.
    Possibly trying to stop from a different thread"), and the next timer event goes to freed
    memory: a segfault (seen in the suite, test_canvas_patch after a dense-canvas test). So the
    automatic collector is off and a timer collects the generations whose counts passed their
    thresholds, as the automatic one would. (pyqtgraph's GarbageCollector does this, but
    importing it imports all of pyqtgraph, ~1 s at startup.)"""

    def __init__(self, app, interval_ms: int = 500):
        import gc

        from PySide6.QtCore import QEvent, QObject, QTimer

        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(app)
        self.timer.timeout.connect(self._tick)
        self.timer.start(interval_ms)
        self._deferred = False
        self._event = QEvent.Type(QEvent.registerEventType())
        collector = self

        class Receiver(QObject):  # gets the posted collection
            def event(self, event):
                if event.type() != collector._event:
                    return super().event(event)
                collector._deferred = False
                collector.collect()
                return True

        self._receiver = Receiver(self.timer)

    def _tick(self) -> None:
        """The timer: a collection due is posted at low priority, so the event loop sends it
        after the events already posted (an edit's repaint: run here it came first, and the
        frame waited for it, #17.3 window edit step)."""
        import gc

        from PySide6.QtCore import QCoreApplication, QEvent, Qt

        if not self._deferred and gc.get_count()[0] > self.threshold[0]:
            self._deferred = True
            QCoreApplication.postEvent(self._receiver, QEvent(self._event), Qt.EventPriority.LowEventPriority.value)

    def collect(self) -> None:
        import gc

        (c0, c1, c2), (t0, t1, t2) = gc.get_count(), self.threshold[:3]
        if c0 > t0:  # as the automatic collector decides: the oldest generation due, with the younger
            gc.collect(2 if c1 > t1 and c2 > t2 else 1 if c1 > t1 else 0)


def collect_on_gui_thread(app) -> GuiThreadCollector:
    """Start :class:`GuiThreadCollector` once for ``app`` (idempotent)."""
    collector = getattr(app, "_gui_thread_collector", None)
    if collector is None:
        collector = GuiThreadCollector(app)
        app._gui_thread_collector = collector  # noqa: SLF001 - lives as long as the application
    return collector
