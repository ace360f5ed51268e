"""An evaluation that fails or is cancelled, at any point (also while its values are being
written), leaves the dataset as it was: no per-sample or per-label values of the key, no run,
no field; and Evaluate under the same key works afterwards.

Before: a run that failed while being stored (its run document deleted meanwhile: "Failed to
update document", seen at 100,000 samples) left ``<key>_tp/fp/fn`` and the labels' values with
no run, and Evaluate under that key was refused; a Cancel while the values were written was not
looked at (the values stayed, the run finished)."""

from __future__ import annotations

import pytest
from helpers_coco import CancelsAt, documents_but_revisions, perturbed_demo

from maskreview.core.errors import CancelledError
from maskreview.core.evaluation import chunks, evaluate_and_store, runs
from maskreview.core.fields import REV_BY_FIELD, REV_FIELD
from maskreview.core.progress import Progress
from maskreview.core.store import reader

KEY = "rolled"


@pytest.fixture(scope="module")
def demo(demo_coco):
    with perturbed_demo(demo_coco, "eval-rollback", seed=7) as dataset:
        yield dataset


def _state(dataset) -> tuple:
    """Every sample document (its revision, writer and modification time aside: the rollback is a
    new revision, so an editor holding one from before sees it), the schema, the runs, the number
    of results files (none left behind)."""
    docs = documents_but_revisions(dataset)
    dataset.reload()
    schema = sorted(set(dataset.get_field_schema(flat=True)) - {REV_FIELD, REV_BY_FIELD})  # declared by any writer
    files = reader.collection(dataset).database["fs.files"].count_documents({})
    return docs, schema, dataset.list_evaluations(), files


def _holding(dataset, key: str) -> int:
    """Samples with a value of ``key`` (per sample, or on a label)."""
    return reader.collection(dataset).count_documents({"$or": [
        {f"{key}_tp": {"$exists": True}}, {f"ground_truth.detections.{key}": {"$exists": True}},
        {f"predictions.detections.{key}_iou": {"$exists": True}}]})


def _evaluates_again(dataset) -> None:
    res = evaluate_and_store(dataset.view(), eval_key=KEY)
    assert KEY in dataset.list_evaluations() and _holding(dataset, KEY) == len(res.sample_ids)
    runs._delete_run(dataset, KEY)


class _DeletesTheRun(Progress):
    """Someone (FiftyOne's App, another window) deletes the run while it is being stored."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset, self.done_it = dataset, False

    def on_update(self) -> None:
        if not self.done_it and KEY in self.dataset.list_evaluations() and _holding(self.dataset, KEY):
            self.done_it = True
            self.dataset.delete_evaluation(KEY)


def test_a_run_failing_while_it_is_stored_leaves_nothing_and_the_key_evaluates_again(demo, monkeypatch):
    monkeypatch.setattr(runs, "WRITE_BATCH", 3)  # values written while the run goes on
    before = _state(demo)
    progress = _DeletesTheRun(demo)
    # FiftyOne's error: "Failed to update document" (as at 100,000) or "no evaluation key", by when it went
    with pytest.raises(ValueError, match="Failed to update document|has no evaluation key"):
        evaluate_and_store(demo.view(), eval_key=KEY, progress=progress)
    assert progress.done_it
    assert _holding(demo, KEY) == 0
    assert _state(demo) == before
    _evaluates_again(demo)


def test_cancel_at_every_point_leaves_the_dataset_as_it_was(demo, monkeypatch):
    monkeypatch.setattr(runs, "WRITE_BATCH", 2)
    monkeypatch.setattr(chunks, "CHUNK_IMAGES", 3)  # progress and Cancel between chunks of 3 images
    total = Progress()
    evaluate_and_store(demo.view(), eval_key="counting", progress=total)
    runs._delete_run(demo, "counting")
    before = _state(demo)
    n_updates = total.done + 1  # start, then one update per advance
    assert n_updates > 12  # chunks, boundary / occlusion per chunk, the write batches
    cancelled_at = []
    for at in range(2, n_updates + 1):
        progress = CancelsAt(at)
        try:
            evaluate_and_store(demo.view(), eval_key=KEY, progress=progress)
        except CancelledError:
            cancelled_at.append(at)
            assert _holding(demo, KEY) == 0, at
            assert _state(demo) == before, at
        else:  # cancelled after the last check: the run is complete
            assert KEY in demo.list_evaluations()
            runs._delete_run(demo, KEY)
            before = _state(demo)
    assert len(cancelled_at) >= n_updates - 3  # every point but the very end
    _evaluates_again(demo)
