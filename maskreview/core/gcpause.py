"""Pausing Python's cyclic garbage collector around bulk work."""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic collector: bulk evaluation and write-back allocate some 10^5 short-lived
    containers, which trigger full collections, and with FiftyOne loaded each one walks the whole
    heap (BENCHMARKS.md, write-back)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
