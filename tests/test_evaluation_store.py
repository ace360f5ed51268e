"""Storing a run: values guarded against concurrent changes, a failed run leaves nothing behind."""

from __future__ import annotations

import pytest

from helpers_coco import perturbed_demo

from maskreview.core.errors import MaskreviewError
from maskreview.core.evaluation import chunks, results as R, runs


@pytest.fixture()
def ds(demo_coco):
    with perturbed_demo(demo_coco, "eval-store", seed=7) as dataset:
        yield dataset


def _stored_outcomes(ds, key):
    return [[d[key] for d in (s.ground_truth.detections if s.ground_truth else [])] for s in ds.select_fields("ground_truth")]


def test_a_sample_tagged_meanwhile_still_gets_its_values(ds):
    res = R.compute(ds)
    first = ds.first()
    first.tags.append("looked-at")
    first.save()  # newer last_modified_at than what the evaluation read
    runs.store(ds, res, "ev")
    outcomes = _stored_outcomes(ds, "ev")
    assert all(o in ("tp", "fn", "ignored") for per in outcomes for o in per)
    assert len(outcomes[0]) == len(first.ground_truth.detections) and None not in outcomes[0]
    assert ds.first()["ev_tp"] == int(res.per_sample["tp"][0])


def test_labels_changed_meanwhile_are_not_mislabelled(ds):
    res = R.compute(ds)
    first = ds.first()
    first.ground_truth.detections = first.ground_truth.detections[::-1]  # same labels, other order
    first.save()
    with pytest.raises(MaskreviewError, match="changed while being evaluated"):
        runs.store(ds, res, "ev")
    assert all(d.to_dict().get("ev") is None for d in ds.first().ground_truth.detections)


def test_a_failed_run_under_a_new_key_is_removed(ds, monkeypatch):
    def fail(evaluation, progress=None):
        raise RuntimeError("accumulate broke")

    monkeypatch.setattr(chunks, "accumulate", fail)  # (COCOeval's accumulate, in parts)
    with pytest.raises(RuntimeError, match="accumulate broke"):
        runs.evaluate_and_store(ds, eval_key="fresh")
    assert "fresh" not in ds.list_evaluations()
    assert "fresh_tp" not in ds.get_field_schema()


def test_a_failed_rerun_keeps_the_old_run(ds, monkeypatch):
    old = runs.evaluate_and_store(ds, eval_key="ev")

    def fail(evaluation, progress=None):
        raise RuntimeError("accumulate broke")

    monkeypatch.setattr(chunks, "accumulate", fail)  # (COCOeval's accumulate, in parts)
    with pytest.raises(RuntimeError):
        runs.evaluate_and_store(ds, eval_key="ev")
    assert ds.load_evaluation_results("ev").mAP() == pytest.approx(old.summary["mAP"], abs=1e-12)



def test_the_results_document_is_written_piece_by_piece_as_in_one_go(ds, monkeypatch):
    """FiftyOne's results JSON, its big arrays made and written one at a time (memory at
    1,000,000 labels), is byte for byte what ``json.dumps(serialize())`` makes, and reads back."""
    import json

    import numpy as np
    from bson import json_util

    from maskreview.core.store import writer as sw

    monkeypatch.setattr(sw, "BIG_ARRAY", 0)  # every array in pieces of its own
    monkeypatch.setattr(sw, "ARRAY_SLICE", 2)  # of 2 items
    got = runs.evaluate_and_store(ds, eval_key="ev")
    back = ds.load_evaluation_results("ev", cache=False)  # (read from the pieces written)
    assert back.mAP() == pytest.approx(got.summary["mAP"], abs=1e-12) and len(back.ytrue) > 1
    back.ious = np.asarray([np.nan, *back.ious.tolist()[1:]], dtype=object)  # (NaN is written NaN)
    want = json.dumps(back.serialize(), default=json_util.default).encode()
    pieces = list(sw.results_json(back))
    assert b"".join(pieces) == want
    assert len(pieces) > len(back.ytrue) // 2 + len(back.ypred_ids) // 2  # (each array a piece per 2 items)


def test_writing_the_results_document_reports_progress_slice_by_slice(ds, monkeypatch):
    """The results document's big arrays are written with a progress update after each slice
    (at 1,000,000 labels the document took 3 s with none), and the bar ends full."""
    from maskreview.core.progress import Progress
    from maskreview.core.store import writer as sw

    updates, inside = [], []

    class Recording(Progress):
        def on_update(self):
            updates.append((self.done, self.total, bool(inside)))

    save = sw.save_run_results

    def saving(*args, **kwargs):
        inside.append(True)
        try:
            return save(*args, **kwargs)
        finally:
            inside.clear()

    monkeypatch.setattr(sw, "save_run_results", saving)
    monkeypatch.setattr(sw, "BIG_ARRAY", 0)
    monkeypatch.setattr(sw, "ARRAY_SLICE", 2)
    runs.evaluate_and_store(ds, eval_key="ev", progress=Recording())
    back = ds.load_evaluation_results("ev", cache=False)
    assert sum(during for *_, during in updates) >= len(back.ytrue) // 2 + len(back.ypred_ids) // 2
    assert all(done <= total for done, total, _ in updates)
    assert updates[-1][0] == updates[-1][1]


def test_stored_results_are_not_held_in_fiftyones_memory_cache_and_read_back_fresh(ds):
    """FiftyOne would keep a run's results object for as long as the dataset (~0.2 GB at
    1,000,000 labels) though nothing here reads it back; a load reads what the rerun stored."""
    from fiftyone.core.evaluation import EvaluationMethod

    first = runs.evaluate_and_store(ds, eval_key="ev")
    cache = getattr(ds, EvaluationMethod._results_cache_field())
    assert "ev" not in cache
    assert ds.load_evaluation_results("ev").mAP() == pytest.approx(first.summary["mAP"], abs=1e-12)
    assert "ev" in cache  # FiftyOne's load caches it (its own choice)
    ds.delete_labels(ids=[ds.first().ground_truth.detections[0].id])
    again = runs.evaluate_and_store(ds, eval_key="ev")
    assert again.summary["mAP"] != first.summary["mAP"] and "ev" not in cache  # the stale copy went
    assert ds.load_evaluation_results("ev").mAP() == pytest.approx(again.summary["mAP"], abs=1e-12)


def test_a_first_evaluation_changes_the_schema_once(ds, monkeypatch):
    """The key's fields and the revision fields in one schema merge: each merge saves and
    reloads the dataset document (~0.03 s of a 1,000-image evaluation's CPU, twice before)."""
    merges = []
    merge = type(ds)._merge_sample_field_schema

    def counted(self, schema, *args, **kwargs):
        merges.append(sorted(schema))
        return merge(self, schema, *args, **kwargs)

    monkeypatch.setattr(type(ds), "_merge_sample_field_schema", counted)
    assert "review_rev" not in ds.get_field_schema()  # (no maskreview writer was here yet)
    runs.evaluate_and_store(ds, eval_key="once")
    assert len(merges) == 1 and "once_tp" in merges[0] and "review_rev" in merges[0]
    assert "ground_truth.detections.once_biou" in ds.get_field_schema(flat=True)


def test_a_first_evaluation_declares_its_sample_fields_before_writing_any_value(ds, monkeypatch):
    """FiftyOne cannot load a sample holding an undeclared sample field (``<key>_tp``): the schema
    merge comes before the writer's first batch, not while it is written (the App or the window
    would fail on the samples written meanwhile)."""
    from maskreview.core.store import reader
    from maskreview.core.store import writer as sw

    declared_at_each_write = []
    write = sw.write

    def checking(dataset, updates, *args, **kwargs):
        doc = reader.collection(dataset).database["datasets"].find_one({"name": dataset.name})
        declared_at_each_write.append({"early_tp", "early_fp", "early_fn"} <= {f["name"] for f in doc["sample_fields"]})
        return write(dataset, updates, *args, **kwargs)

    monkeypatch.setattr(sw, "write", checking)
    runs.evaluate_and_store(ds, eval_key="early")
    assert declared_at_each_write and all(declared_at_each_write)


def test_storing_a_run_saves_the_dataset_document_once_with_its_sidebar_group(ds, monkeypatch):
    """Registering the run and FiftyOne's sidebar group of its fields in one save of the
    dataset document (mongoengine walks every field declaration on each: two before)."""
    saves = []
    save = type(ds).save

    def counted(self, *args, **kwargs):
        saves.append(self.name)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(type(ds), "save", counted)
    runs.evaluate_and_store(ds, eval_key="side")
    assert len(saves) == 1
    ds.reload()
    groups = {g.name: list(g.paths) for g in ds.app_config.sidebar_groups or []}
    assert groups.get("side") == ["side_tp", "side_fp", "side_fn"]  # what add_fields_to_sidebar_group makes
