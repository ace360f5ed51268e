"""Every write to a sample's labels is a new revision, not only an edit's (issue 21.2).

A model run, its undo (a field snapshot written back) and an evaluation storing its results
increment ``review_rev`` in the same update, so an editor holding the version it loaded sees
the change even when it was stamped in the very millisecond of that version. Each test forces
that collision: the other write's ``last_modified_at`` is set back to the editor's stamp.
"""

from __future__ import annotations

import pytest

from conftest import run_cli
from helpers_coco import perturbed_demo

from maskreview.core.editing import ops as ed
from maskreview.core.store import ids
from maskreview.core.errors import BadInputError
from maskreview.core.evaluation import evaluate_and_store
from maskreview.core.model.field_snapshot import restore_field, snapshot_field
from maskreview.core.model.engine import Engine, EngineSettings
from maskreview.core.model.runs import run_inference
from maskreview.core.names import check_eval_key, check_field_name
from maskreview.core.editing.session import REV_FIELD, ConflictError, EditSession

DEMO = EngineSettings(device="cpu", score_thresh=0.05, max_detections=6)


@pytest.fixture(scope="module")
def demo_engine():
    return Engine("demo", settings=DEMO)


@pytest.fixture()
def ds(demo_coco, fo, tmp_path):
    with perturbed_demo(demo_coco, f"revisions-{tmp_path.name}", seed=5) as dataset:
        yield dataset


def _doc(ds, sid) -> dict:
    return ds._sample_collection.find_one({"_id": ids.as_oid(sid)})


def _in_the_same_millisecond(ds, sid, session) -> None:
    """The other writer stamped the sample with the very ``last_modified_at`` the editor holds."""
    ds._sample_collection.update_one({"_id": ids.as_oid(sid)},
                                     {"$set": {"last_modified_at": session.versions[sid].modified}})


def _edit_refused(ds, sid, session) -> None:
    """Relabelling a ground-truth label raises ConflictError and writes nothing."""
    before = _doc(ds, sid)
    label = before["ground_truth"]["detections"][0]
    with pytest.raises(ConflictError) as err:
        session.apply(ed.Relabel((ed.LabelRef(sid, "ground_truth", str(label["_id"])),), "stale-edit"))
    assert err.value.sample_ids == [sid]
    assert _doc(ds, sid) == before


def test_a_model_run_in_the_same_millisecond_is_a_conflict(ds, tmp_path, demo_engine):
    sid = ds.first().id
    with EditSession(ds, journal_root=tmp_path / "journal") as session:
        session.track(sid)
        held = session.versions[sid]
        report = run_inference(ds.select(sid), demo_engine, field="pred_demo")
        assert report.predicted == 1 and _doc(ds, sid)["pred_demo"]["detections"]
        _in_the_same_millisecond(ds, sid, session)
        _edit_refused(ds, sid, session)
        assert _doc(ds, sid)[REV_FIELD] == held.rev + 1
        session.refresh(sid)  # take theirs: then the edit goes through
        label = _doc(ds, sid)["ground_truth"]["detections"][0]
        session.apply(ed.Relabel((ed.LabelRef(sid, "ground_truth", str(label["_id"])),), "fresh-edit"))
    assert _doc(ds, sid)["ground_truth"]["detections"][0]["label"] == "fresh-edit"


def test_undoing_a_model_run_in_the_same_millisecond_is_a_conflict(ds, tmp_path, demo_engine):
    sid = ds.first().id
    before = snapshot_field(ds, "pred_demo", [sid])
    run_inference(ds.select(sid), demo_engine, field="pred_demo")
    with EditSession(ds, journal_root=tmp_path / "journal") as session:
        session.track(sid)
        assert restore_field(ds, before) == [sid]  # the run undone from another window
        _in_the_same_millisecond(ds, sid, session)
        _edit_refused(ds, sid, session)


def test_stored_evaluation_results_in_the_same_millisecond_are_a_conflict(ds, tmp_path):
    sid = ds.first().id
    with EditSession(ds, journal_root=tmp_path / "journal") as session:
        session.track(sid)
        evaluate_and_store(ds, eval_key="ev", boundary=False, occlusion=False)
        assert "ev" in _doc(ds, sid)["ground_truth"]["detections"][0]
        _in_the_same_millisecond(ds, sid, session)
        _edit_refused(ds, sid, session)


def test_an_edit_in_the_same_millisecond_as_an_evaluation_read_is_not_mislabelled(ds, tmp_path):
    """The other way round: an evaluation's writes are conditional on the revision it read, so
    values computed for labels an editor replaced meanwhile never land on the labels now there."""
    import numpy as np

    from maskreview.core.errors import MaskreviewError
    from maskreview.core.evaluation.results import compute
    from maskreview.core.evaluation.runs import store

    sid = ds.first().id
    with EditSession(ds, journal_root=tmp_path / "journal") as session:
        read = _doc(ds, sid)
        results = compute(ds, boundary=False, occlusion=False)
        first = read["predictions"]["detections"][0]
        bitmap = np.zeros((read["metadata"]["height"], read["metadata"]["width"]), bool)
        bitmap[2:12, 2:12] = True
        # the reviewer deletes the first prediction and draws another: as many labels, in other places
        session.apply_many([ed.DeleteLabels((ed.LabelRef(sid, "predictions", str(first["_id"])),)),
                            ed.AddInstance(sid, "predictions", first["label"], bitmap=bitmap)])
    ds._sample_collection.update_one({"_id": ids.as_oid(sid)}, {"$set": {"last_modified_at": read["last_modified_at"]}})
    with pytest.raises(MaskreviewError, match="changed while being evaluated"):
        store(ds, results, "ev")
    now = _doc(ds, sid)["predictions"]["detections"]
    assert len(now) == len(read["predictions"]["detections"])
    assert not any("ev" in d for d in now)  # nothing written on the moved labels
    others = [s for s in ds._sample_collection.find({"_id": {"$ne": ids.as_oid(sid)}}, {"predictions": 1})]
    assert all("ev" in d for s in others for d in s["predictions"]["detections"])  # the rest was stored


def test_the_revision_fields_are_reserved_names(ds, fo):
    assert REV_FIELD not in ds.get_field_schema()  # no edit session yet: nothing declared them
    for name in ("review_rev", "review_rev_by"):
        with pytest.raises(BadInputError, match=repr(name)):
            check_field_name(ds, name, fo.Detections, "field")
        with pytest.raises(BadInputError, match=repr(name)):
            check_eval_key(ds, name, "ground_truth", "predictions")
    proc = run_cli("eval", ds.name, "--gt-field", "ground_truth", "--pred-field", "predictions",
                   "--eval-key", "review_rev")
    assert proc.returncode == 2 and proc.stderr.startswith("maskreview: error: "), proc.stderr
    assert "'review_rev'" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("infer", ds.name, "--model", "demo", "--device", "cpu", "--field", "review_rev", timeout=900)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("maskreview: error: ")
    assert "'review_rev'" in proc.stderr and "Traceback" not in proc.stderr
    ds.reload()
    assert REV_FIELD not in ds.get_field_schema() and ds.list_evaluations() == []
