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
