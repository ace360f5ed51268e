"""A re-evaluation reuses what the samples unchanged since the last run had (``evaluation/cache.py``)
and writes only the samples whose values are not already stored, with the numbers and stored
values of an evaluation from scratch (itself compared with pycocotools in
``test_evaluation_identity.py``): after edits through the edit session, a change through
FiftyOne's own ``save()``, the run deleted by FiftyOne, for masks and for boxes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_coco import perturbed_demo

from maskreview.core.editing import ops as ed
from maskreview.core.editing.session import EditSession
from maskreview.core.evaluation import cache, coco, runs
from maskreview.core.evaluation import results as R
from maskreview.core.fields import REV_FIELD

SUFFIXES = ("", "_id", "_iou", "_biou")


@pytest.fixture()
def ds(demo_coco, tmp_path):
    cache.clear()
    with perturbed_demo(demo_coco, f"eval-reuse-{tmp_path.name}", seed=3) as dataset:
        yield dataset


def _same(got: R.EvalResults, want: R.EvalResults) -> None:
    assert got.sample_ids == want.sample_ids
    for table in ("gt", "pred"):
        a, b = getattr(got, table), getattr(want, table)
        assert a.label_id.tolist() == b.label_id.tolist() and a.outcome.tolist() == b.outcome.tolist(), table
        for name in ("match", "iou", "biou", "occlusion", "area", "img", "cls"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"{table}.{name}")
    for k in coco.STAT_NAMES:
        assert got.summary[k] == want.summary[k], k
    assert got.summary["per_class"] == want.summary["per_class"]
    np.testing.assert_array_equal(got.precision, want.precision)
    for name in ("tp", "fp", "fn"):
        np.testing.assert_array_equal(got.per_sample[name], want.per_sample[name])


def _stored(ds, key: str) -> list:
    """Every value stored under ``key``, per sample, labels in order."""
    out = []
    for doc in ds._sample_collection.find({}, sort=[("_id", 1)]):
        row = [doc.get(f"{key}_{n}") for n in ("tp", "fp", "fn")]
        for field in ("ground_truth", "predictions"):
            row += [tuple(d.get(key + s) for s in SUFFIXES) for d in (doc.get(field) or {}).get("detections", [])]
        out.append(row)
    return out


def _revs(ds) -> dict:
    return {str(d["_id"]): d.get(REV_FIELD) for d in ds._sample_collection.find({}, {REV_FIELD: 1})}


def _edit(ds, tmp_path) -> set[str]:
    """Relabel a GT, delete a prediction, redraw a GT mask: three samples; returns their ids."""
    docs = list(ds._sample_collection.find({}, {"ground_truth": 1, "predictions": 1, "metadata": 1}).limit(3))
    a, b, c = ([str(d["_id"]) for d in docs])
    gt_a = str(docs[0]["ground_truth"]["detections"][0]["_id"])
    pred_b = str(docs[1]["predictions"]["detections"][0]["_id"])
    gt_c = str(docs[2]["ground_truth"]["detections"][0]["_id"])
    bitmap = np.zeros((docs[2]["metadata"]["height"], docs[2]["metadata"]["width"]), bool)
    bitmap[10:40, 20:60] = True
    with EditSession(ds, journal_root=tmp_path / "journal") as session:
        session.apply_many([ed.Relabel((ed.LabelRef(a, "ground_truth", gt_a),), "square"),
                            ed.DeleteLabels((ed.LabelRef(b, "predictions", pred_b),)),
                            ed.SetMask(ed.LabelRef(c, "ground_truth", gt_c), bitmap)])
    return {a, b, c}


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_a_rerun_after_edits_gives_the_numbers_from_scratch_and_writes_only_the_edited(ds, tmp_path, iou_type):
    runs.evaluate_and_store(ds, iou_type=iou_type, eval_key="ev")
    again = runs.evaluate_and_store(ds, iou_type=iou_type, eval_key="ev")
    assert len(again.cache) == len(ds)
    before = _revs(ds)
    runs.evaluate_and_store(ds, iou_type=iou_type, eval_key="ev")  # nothing changed: nothing written
    assert _revs(ds) == before
    cache.clear()  # as in a new process: the values stored are read with the labels
    runs.evaluate_and_store(ds, iou_type=iou_type, eval_key="ev")
    assert _revs(ds) == before
    edited = _edit(ds, tmp_path)
    before = _revs(ds)
    got = runs.evaluate_and_store(ds, iou_type=iou_type, eval_key="ev")
    want = R.compute(ds, iou_type=iou_type, reuse=False)
    _same(got, want)
    after = _revs(ds)
    written = {s for s in after if after[s] != before[s]}
    assert written and written <= edited  # edited samples only (one whose values stay is not rewritten)
    runs.evaluate_and_store(ds, iou_type=iou_type, eval_key="scratch", reuse=False)
    assert _stored(ds, "ev") == _stored(ds, "scratch")
    assert ds.load_evaluation_results("ev").mAP() == pytest.approx(want.summary["mAP"], abs=1e-12)


def test_values_changed_by_fiftyone_are_written_again(ds):
    runs.evaluate_and_store(ds, eval_key="ev")
    want = _stored(ds, "ev")
    sample = ds.first()
    sample.predictions.detections[0]["ev"] = "tampered"
    sample.save()  # FiftyOne's own write: a new last_modified_at
    runs.evaluate_and_store(ds, eval_key="ev")
    assert _stored(ds, "ev") == want


def test_a_run_deleted_by_fiftyone_is_stored_in_full_again(ds):
    runs.evaluate_and_store(ds, eval_key="ev")
    runs.evaluate_and_store(ds, eval_key="ev")
    want = _stored(ds, "ev")
    ds.delete_evaluation("ev")  # FiftyOne's own; it leaves the <key>_biou it does not know of
    ds.delete_sample_fields([f"{f}.detections.ev_biou" for f in ("ground_truth", "predictions")])
    assert all(v is None for row in _stored(ds, "ev") for v in row[:3])
    runs.evaluate_and_store(ds, eval_key="ev")
    assert _stored(ds, "ev") == want


def test_a_filtered_view_and_the_dataset_are_kept_apart(ds):
    from fiftyone import ViewField as F

    whole = R.compute(ds)
    view = ds.filter_labels("predictions", F("confidence") > 0.5, only_matches=False)
    got, want = R.compute(view), R.compute(view, reuse=False)
    _same(got, want)
    assert len(got.pred) < len(whole.pred)
    _same(R.compute(ds), whole)


def test_samples_past_the_cache_cap_give_the_numbers_from_scratch_and_keep_no_labels(ds, tmp_path, monkeypatch):
    """Past ``cache.MAX_LABELS`` an entry is not kept: once its labels are gathered it holds none
    of them, nor anything computed from them (memory: ~0.4 GB at 100,000 samples), and the
    numbers and stored values are those of a run with nothing kept, first run, rerun and after edits."""
    n = sum(len(s.ground_truth.detections) + len(s.predictions.detections) for s in ds)
    monkeypatch.setattr(cache, "MAX_LABELS", n // 2)
    first = runs.evaluate_and_store(ds, eval_key="ev")
    kept = [e for e in first.entries if e.kept]
    assert 0 < len(kept) < len(ds) and len(first.cache) == len(kept)
    for e in first.entries:
        held = (e.rows, e.ious, e.occlusion, e.biou, e.gt_area, e.gt_bbox, e.pred_area)
        assert all(held[:3]) and e.gt_area is not None if e.kept else not any(held), e
    assert any(e.biou for e in kept)
    _same(first, R.compute(ds, reuse=False))
    _edit(ds, tmp_path)
    got = runs.evaluate_and_store(ds, eval_key="ev")
    assert not any(e.rows for e in got.entries if not e.kept)
    _same(got, R.compute(ds, reuse=False))
    runs.evaluate_and_store(ds, eval_key="scratch", reuse=False)
    assert _stored(ds, "ev") == _stored(ds, "scratch")


def test_the_views_caches_share_one_label_budget_the_oldest_view_letting_go_first(ds, monkeypatch):
    """A filtered view evaluated, then the whole dataset: together they keep at most
    ``cache.MAX_LABELS`` labels (not that many each), the older view's going first."""
    n = sum(len(s.ground_truth.detections) + len(s.predictions.detections) for s in ds)
    monkeypatch.setattr(cache, "MAX_LABELS", n)
    cache.clear()
    part = ds.limit(len(ds) // 2)
    first = R.compute(part)
    assert len(first.cache) == len(part) and first.cache._labels < n
    whole = R.compute(ds)
    assert len(whole.cache) == len(ds) and whole.cache._labels == n
    assert sum(c._labels for c in cache._caches.values()) <= n
    assert first.cache not in cache._caches.values()  # let go of
    _same(R.compute(part), R.compute(part, reuse=False))
    assert sum(c._labels for c in cache._caches.values()) <= n
