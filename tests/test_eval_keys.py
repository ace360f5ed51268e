"""Eval keys never write into what the evaluation does not own (issue 21.1).

A key that is a label's or a sample's own name (``tags``, ``mask``, ``label``, ``filepath``...),
or whose values would land on an existing field or label attribute that is not the key's own
from an earlier run, is refused before anything is written; re-running a key replaces that
run's values and nothing else.
"""

from __future__ import annotations

import pytest

from conftest import run_cli
from helpers_coco import perturbed_demo

from maskreview.core.errors import BadInputError
from maskreview.core.evaluation import evaluate_and_store
from maskreview.core.names import check_eval_key, check_field_name

RESERVED = ["tags", "label", "mask", "metadata", "bounding_box", "confidence", "id", "attributes", "index",
            "filepath", "mask_path", "created_at", "last_modified_at", "copy", "_private", "9lives", "a-b", ""]


@pytest.fixture()
def ds(demo_coco, fo):
    with perturbed_demo(demo_coco, "eval-keys", seed=3) as dataset:
        first = dataset.first()
        first.ground_truth.detections[0].tags = ["bad-boundary"]  # a reviewer's tag on a label
        first.save()
        yield dataset


def _snapshot(dataset) -> list[dict]:
    """Every sample as stored, for comparing before and after."""
    return list(dataset._sample_collection.find({}, sort=[("_id", 1)]))


def _label_values(dataset, field: str, attr: str) -> list:
    return [d.get(attr) for s in dataset._sample_collection.find({}, sort=[("_id", 1)])
            for d in (s.get(field) or {}).get("detections", [])]


def test_cli_refuses_eval_key_tags_and_leaves_the_dataset_alone(ds):
    before = _snapshot(ds)
    for key in ("tags", "mask"):
        proc = run_cli("eval", ds.name, "--gt-field", "ground_truth", "--pred-field", "predictions",
                       "--eval-key", key)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("maskreview: error: ") and repr(key) in lines[0], lines
        assert "Traceback" not in proc.stderr
    ds.reload()
    assert _snapshot(ds) == before
    assert ds.first().ground_truth.detections[0].tags == ["bad-boundary"]
    assert ds.list_evaluations() == []
    assert len(ds.select_fields("ground_truth").values("ground_truth.detections.mask")) == len(ds)  # loads


@pytest.mark.parametrize("key", RESERVED)
def test_reserved_keys_are_refused_before_writing(ds, key):
    before = _snapshot(ds)
    with pytest.raises(BadInputError) as err:
        evaluate_and_store(ds, eval_key=key)
    assert repr(key) in str(err.value)
    assert _snapshot(ds) == before and ds.list_evaluations() == []


def test_keys_whose_values_would_land_on_other_data_are_refused(ds, fo):
    first = ds.first()
    first.ground_truth.detections[0]["reviewer"] = "ann"  # an undeclared label attribute
    first["score_tp"] = "not an int"  # a sample field a key 'score' would write over
    first.save()
    assert "ground_truth.detections.reviewer" not in ds.get_field_schema(flat=True)  # found in the data alone
    ds.add_sample_field("review_note", fo.StringField)
    ds.set_values("predictions.detections.q_iou", [[0.5] * len(s.predictions.detections) for s in ds])
    for key, culprit in (("reviewer", "ground_truth.detections.reviewer"), ("score", "score_tp"),
                         ("q", "predictions.detections.q_iou"), ("review_note", "review_note"),
                         ("predictions", "predictions"), ("ground_truth", "ground_truth")):
        with pytest.raises(BadInputError, match=culprit):
            check_eval_key(ds, key, "ground_truth", "predictions")
    assert ds.first().ground_truth.detections[0]["reviewer"] == "ann"
    check_eval_key(ds, "eval", "ground_truth", "predictions")  # a fresh key is fine
    ds.set_values("gt_cls", [fo.Classification(label="a")] * len(ds))
    ds.set_values("pred_cls", [fo.Classification(label="a")] * len(ds))
    ds.evaluate_classifications("pred_cls", gt_field="gt_cls", eval_key="cls")
    with pytest.raises(BadInputError, match="another kind of evaluation"):
        evaluate_and_store(ds, eval_key="cls")


def test_an_undeclared_attribute_of_a_later_label_of_a_later_sample_is_found(ds):
    """The label attributes are looked for item by item in each list ($elemMatch), not on the first only."""
    last = ds.last()
    assert len(last.predictions.detections) > 1
    last.predictions.detections[-1]["late_biou"] = 0.3
    last.save()
    assert "predictions.detections.late_biou" not in ds.get_field_schema(flat=True)
    with pytest.raises(BadInputError, match="predictions.detections.late_biou"):
        check_eval_key(ds, "late", "ground_truth", "predictions")
    check_eval_key(ds, "later", "ground_truth", "predictions")


def test_rerunning_a_key_replaces_only_its_own_values(ds, fo):
    ds.clone_sample_field("predictions", "predictions2")  # before any run: holds no eval values
    evaluate_and_store(ds, eval_key="eval")
    evaluate_and_store(ds, eval_key="other")
    other_before = _label_values(ds, "predictions", "other")
    # reviewers work between the runs: a label attribute; one prediction is relabelled
    sample = ds.first()
    sample.ground_truth.detections[1]["note"] = "occluded"
    moved = sample.predictions.detections[0]
    moved.label = next(c for c in ds.distinct("ground_truth.detections.label") if c != moved.label)
    sample.save()
    key_before = _label_values(ds, "predictions", "eval")

    evaluate_and_store(ds, eval_key="eval")  # the same key, the same fields: values replaced in place
    ds.reload()
    sample = ds.first()
    assert sample.ground_truth.detections[0].tags == ["bad-boundary"]
    assert sample.ground_truth.detections[1]["note"] == "occluded"
    assert sample.predictions.detections[0]["eval"] == "fp"
    assert _label_values(ds, "predictions", "eval") != key_before
    assert _label_values(ds, "predictions", "other") == other_before
    assert ds.list_evaluations() == ["eval", "other"]

    # the same key on other predictions: the old run's values leave the old field, all of them
    evaluate_and_store(ds, pred_field="predictions2", eval_key="eval")
    ds.reload()
    for suffix in ("", "_id", "_iou", "_biou"):
        assert set(_label_values(ds, "predictions", f"eval{suffix}")) == {None}, suffix
        assert set(_label_values(ds, "predictions2", f"eval{suffix}")) != {None}, suffix
    assert _label_values(ds, "predictions", "other") == other_before
    assert ds.first().ground_truth.detections[0].tags == ["bad-boundary"]
    assert ds.get_evaluation_info("eval").config.pred_field == "predictions2"


def test_field_names_for_commands_that_write_a_field(ds, fo):
    for name in ("tags", "filepath", "metadata", "id", "_x", "a b"):
        with pytest.raises(BadInputError):
            check_field_name(ds, name, fo.Detections, "output field")
    evaluate_and_store(ds, eval_key="eval")
    with pytest.raises(BadInputError, match="eval_tp"):  # an IntField, not detections
        check_field_name(ds, "eval_tp", fo.Detections, "output field")
    check_field_name(ds, "predictions", fo.Detections, "output field")  # same kind: the caller decides
    check_field_name(ds, "new_predictions", fo.Detections, "output field")
