"""Pausing Python's cyclic garbage collector around bulk work."""

from __future__ import annotations

import contextlib
import gc

from maskreview.core import heap


@contextlib.contextmanager
def gc_paused(keep: bool = False):
    """Pause the cyclic collector: bulk evaluation and write-back allocate some 10^5 short-lived
    containers, which trigger full collections, and with FiftyOne loaded each one walks the whole
    heap (BENCHMARKS.md, write-back).

    ``keep``: when the work ends (not on an exception), what is tracked then is moved to the
    collector's permanent generation (``gc.freeze``): everything the work made and still holds
    (an evaluation's results and cache entries: ~10^7 containers at 1,000,000 labels) would
    otherwise all sit in the youngest generation, and the first collection after the pause
    walks it in one go (~10 s, holding the GIL: the last wait of a 100,000-sample evaluation;
    in the window, a stall of the GUI thread, ``gui.runtime.GuiThreadCollector``), and every
    full collection after that walks it again. Frozen objects are still freed when their last
    reference goes; only cyclic garbage present at that moment (the work's, or any made before
    and not yet collected) is never collected, so the work must make none (``tests/test_eval_gc.py``: an evaluation leaves no cycle behind).
    Then the heap the work freed goes back to the system (:func:`heap.give_back_later`): the next
    job would otherwise start on the RSS of this one's peak."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if keep:
            gc.freeze()
            heap.give_back_later()
    finally:
        if enabled:
            gc.enable()
