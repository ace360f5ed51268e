"""The end of a bulk job that keeps its results (``gc_paused(keep=True)``: an evaluation) gives
the heap it freed back to the system. glibc returns only the free top of its heap by itself:
memory freed below a block still in use stayed in the process's RSS (after an evaluation of
100,000 samples ~0.5 GB, on top of which the next run peaked)."""

from __future__ import annotations

import platform

import psutil
import pytest

from maskreview.core import heap
from maskreview.core.gcpause import gc_paused

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")

MB = 2**20


def _rss() -> int:
    return psutil.Process().memory_info().rss


def test_the_freed_heap_goes_back_when_the_job_ends():
    with gc_paused(keep=True):
        blocks = [bytes(4000) for _ in range(50_000)]  # ~200 MB of malloc'd (not pymalloc) blocks
        kept = bytes(4000)  # still in use, after them in the heap: the heap's top is not free
        before = _rss()
        del blocks
        freed = _rss()
    heap._giving[-1].join(10)  # (on a thread of its own: a Cancel does not wait for it)
    after = _rss()
    assert before - freed < 50 * MB  # what glibc gives back by itself
    assert freed - after > 150 * MB
    assert len(kept) == 4000


def test_give_back_is_harmless_with_nothing_to_give():
    heap.give_back()
    assert heap.give_back() in (True, False)
    thread = heap.give_back_later()
    if thread is not None:
        thread.join(10)
        assert not thread.is_alive()
