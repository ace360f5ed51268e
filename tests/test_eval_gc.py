"""An evaluation leaves no cyclic garbage, run to the end or cancelled at any point (while its
values are written too): what a run keeps is frozen out of the collector's sight when it ends
(``gc_paused(keep=True)``: at 100,000 samples the first collection after the run walked ~10^7
objects, the last ~9 s wait of the run), so garbage present then would never be collected.

Before: each chunk's COCOeval kept itself alive in a cycle (its ``computeIoU`` replaced by a
lambda holding the bound method), with its COCO objects and IoU matrices; a cancelled run's
error held every frame of the run (its tables), and the writer's error the run itself."""

from __future__ import annotations

import gc
from collections import Counter

import pytest
from helpers_coco import CancelsAt, perturbed_demo

from maskreview.core.errors import CancelledError
from maskreview.core import heap
from maskreview.core.evaluation import chunks, evaluate_and_store, runs
from maskreview.core.progress import Progress

# what only an evaluation makes (a cycle of pymongo's or FiftyOne's own is not ours to judge)
OF_A_RUN = {"COCOeval_faster", "COCO", "Params", "frame", "traceback", "CancelledError", "_Store", "EvalResults",
            "Entry", "Rows", "Evaluation", "Matches", "Objects", "Thread"}


@pytest.fixture(scope="module")
def demo(demo_coco):
    with perturbed_demo(demo_coco, "eval-gc", seed=11) as dataset:
        yield dataset


def _garbage_of(job, monkeypatch) -> Counter:
    """The types of the cyclic garbage ``job()`` leaves (nothing frozen meanwhile)."""
    monkeypatch.setattr(gc, "freeze", lambda: None)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        job()
        heap.wait_freed(30)  # (a cancelled run's tables are freed on a thread)
        gc.collect()
        return Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.fixture()
def small_steps(monkeypatch):
    monkeypatch.setattr(runs, "WRITE_BATCH", 2)  # values written while the run goes on
    monkeypatch.setattr(chunks, "CHUNK_IMAGES", 3)  # several chunks (each its own COCOeval)


def test_a_run_to_the_end_leaves_no_cycle(demo, monkeypatch, small_steps):
    def job():
        res = evaluate_and_store(demo.view(), eval_key="gc_end")
        assert res.summary["mAP"] > 0
        runs._delete_run(demo, "gc_end")

    garbage = _garbage_of(job, monkeypatch)
    assert not set(garbage) & OF_A_RUN, garbage.most_common(12)


def test_a_cancelled_run_leaves_no_cycle(demo, monkeypatch, small_steps):
    total = Progress()
    evaluate_and_store(demo.view(), eval_key="gc_count", progress=total)
    runs._delete_run(demo, "gc_count")
    n_updates = total.done + 1
    for at in sorted({2, n_updates // 3, n_updates // 2, n_updates - 8, n_updates - 4}):  # reading .. writing
        def job():
            try:  # (not pytest.raises: its record of the error and this frame make a cycle)
                evaluate_and_store(demo.view(), eval_key="gc_cancel", progress=CancelsAt(at))
            except CancelledError:
                pass
            else:
                raise AssertionError(f"not cancelled at update {at}")
            assert "gc_cancel" not in demo.list_evaluations()

        garbage = _garbage_of(job, monkeypatch)
        assert not set(garbage) & OF_A_RUN, (at, n_updates, garbage.most_common(12))


def test_a_cancelled_runs_tables_are_freed_on_a_thread_not_by_the_cancelled_call(demo, monkeypatch, small_steps):
    """At 100,000 samples freeing a cancelled run's tables (~10^7 objects) took 1.2 s, which the
    Cancel waited for: they go on a thread of their own, the call raises at once."""
    import threading

    from maskreview.core.evaluation import coco

    freed_on = []

    class Table:  # stands for the run's tables, held by its frames or its results as they are
        def __init__(self, what):
            self.what = what

        def __del__(self):
            freed_on.append((self.what, threading.current_thread().name))

    read, compute = coco.coco_inputs, runs.compute

    def reading(*args, **kwargs):
        inputs = read(*args, **kwargs)
        inputs.table = Table("inputs")
        return inputs

    def computing(*args, **kwargs):
        results = compute(*args, **kwargs)
        results.table = Table("results")
        return results

    monkeypatch.setattr(coco, "coco_inputs", reading)
    monkeypatch.setattr(runs, "compute", computing)
    total = Progress()
    evaluate_and_store(demo.view(), eval_key="gc_free", progress=total)
    runs._delete_run(demo, "gc_free")
    freed_on.clear()
    for at, held in ((total.done // 2, "inputs"), (total.done - 4, "results")):  # in COCOeval; while the values are written
        try:
            evaluate_and_store(demo.view(), eval_key="gc_free", progress=CancelsAt(at))
        except CancelledError:
            pass
        else:
            raise AssertionError(f"not cancelled at update {at}")
        heap.wait_freed(30)
        assert (held, "maskreview-free") in freed_on, (at, freed_on)
        assert all(name == "maskreview-free" for what, name in freed_on if what == held), (at, freed_on)
        freed_on.clear()
