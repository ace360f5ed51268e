"""Qt layer of maskreview: renders core state and turns user actions into core calls."""

import sys

if sys.version_info < (3, 12):
    # PySide6 6.12 returns None from every void method (QPainter.drawRect, QWidget.update,
    # processEvents, ...) without a new reference, so each call takes one reference from None;
    # after some tens of thousands of calls CPython aborts with "none_dealloc". Python 3.12+
    # makes None immortal; on 3.11 we give it a reserve no session can spend (2**50 calls).
    import ctypes

    ctypes.c_ssize_t.from_address(id(None)).value += 1 << 50
