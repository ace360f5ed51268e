"""An eval key whose run FiftyOne deleted (``dataset.delete_evaluation``, the App's or the API's)
can be evaluated again: FiftyOne removes the fields it knows of, and maskreview's own
``<field>.detections.<key>_biou`` that it leaves behind, marked as this key's, is replaced. A field
of that name that maskreview did not make is still never written over."""

from __future__ import annotations

import numpy as np
import pytest

from helpers_coco import perturbed_demo

from maskreview.core.errors import BadInputError
from maskreview.core.evaluation import evaluate_and_store

BIOU = "ground_truth.detections.eval_biou"
ATTRS = ("eval", "eval_id", "eval_iou", "eval_biou")


@pytest.fixture()
def ds(demo_coco, fo):
    with perturbed_demo(demo_coco, "eval-key-deleted-run", seed=5) as dataset:
        yield dataset


def _stored(dataset) -> dict:
    """Every value an evaluation stored, per sample and label (ids of labels, not positions)."""
    out = {}
    for s in dataset._sample_collection.find({}, sort=[("_id", 1)]):
        out[str(s["_id"])] = tuple(s.get(f"eval_{k}") for k in ("tp", "fp", "fn"))
        for field in ("ground_truth", "predictions"):
            for d in (s.get(field) or {}).get("detections", []):
                out[str(d["_id"])] = tuple(d.get(a) for a in ATTRS)
    return out


def test_a_key_whose_run_fiftyone_deleted_evaluates_again_with_the_same_numbers(ds):
    first = evaluate_and_store(ds, eval_key="eval")
    stored, m_ap = _stored(ds), ds.load_evaluation_results("eval").mAP()
    assert any(v[3] is not None for v in stored.values() if len(v) == 4)  # boundary IoUs were written
    ds.delete_evaluation("eval")  # as the App or a script does: maskreview is not asked
    assert ds.list_evaluations() == []
    assert BIOU in ds.get_field_schema(flat=True)  # what FiftyOne leaves (it does not know of _biou)
    again = evaluate_and_store(ds, eval_key="eval")
    assert ds.list_evaluations() == ["eval"]
    assert _stored(ds) == stored
    assert ds.load_evaluation_results("eval").mAP() == pytest.approx(m_ap)
    assert again.summary == first.summary  # identical, not close
    assert np.array_equal(again.precision, first.precision)
    # and once more, deleted again after the rerun: the field made by the rerun is marked too
    ds.delete_evaluation("eval")
    evaluate_and_store(ds, eval_key="eval")
    assert _stored(ds) == stored


def _refused_and_untouched(dataset) -> None:
    before = list(dataset._sample_collection.find({}, sort=[("_id", 1)]))
    with pytest.raises(BadInputError, match="eval_biou"):
        evaluate_and_store(dataset, eval_key="eval")
    after = list(dataset._sample_collection.find({}, sort=[("_id", 1)]))
    assert [{k for k in set(a) | set(b) if a.get(k) != b.get(k)} for a, b in zip(after, before)] == [set()] * len(before)
    assert dataset.list_evaluations() == []
    assert BIOU in dataset.get_field_schema(flat=True)


def _own_biou(dataset, value: float = 0.25) -> None:
    import fiftyone as fo

    dataset.add_sample_field(BIOU, fo.FloatField)
    for sample in dataset.iter_samples(autosave=True):
        for det in sample.ground_truth.detections:
            det["eval_biou"] = value


def test_a_foreign_field_named_like_the_key_is_still_refused(ds):
    _own_biou(ds)  # a user's own FloatField, no run ever under 'eval'
    _refused_and_untouched(ds)
    assert set(ds.values(BIOU, unwind=True)) == {0.25}


def test_a_foreign_field_made_after_the_run_was_deleted_is_refused(ds):
    evaluate_and_store(ds, eval_key="eval")
    ds.delete_evaluation("eval")
    ds.delete_sample_field(BIOU)  # the user removed the leftover and made a field of their own
    _own_biou(ds, 0.75)
    _refused_and_untouched(ds)
    assert set(ds.values(BIOU, unwind=True)) == {0.75}
