"""Model runs never destroy review work; one field per model; provenance; the automatic run; failures.

Issue #13 points 1-5 (core and CLI), on the demo model and a second tiny model (random weights).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_cli

from maskreview.core.editing import ops as ed
from maskreview.core.editing import labels as lb
from maskreview.core.store import ids
from maskreview.core import masks as mk
from maskreview.core.model.autorun import ModelChoice, chosen_model, fill_missing, missing_sample_ids, remember_model
from maskreview.core.errors import BadInputError
from maskreview.core.model.field_snapshot import restore_field, snapshot_field
from maskreview.core.model.engine import Engine, EngineSettings
from maskreview.core.model.runs import run_inference
from maskreview.core.model.provenance import FieldTakenError, prediction_fields, propose_field, provenance, slug
from maskreview.core.model.reviewed import reviewed_ids
from maskreview.core.sources import open_source
from maskreview.core.editing.session import EditSession

DEMO = EngineSettings(device="cpu", score_thresh=0.05, max_detections=12)
TINY = EngineSettings(device="cpu", score_thresh=0.05, max_detections=8)


@pytest.fixture(scope="module")
def demo_engine():
    return Engine("demo", settings=DEMO)


@pytest.fixture(scope="module")
def tiny_engine(tiny_model):
    return Engine(str(tiny_model), settings=TINY)


@pytest.fixture
def ds(fo, demo_coco, tmp_path):
    return open_source(demo_coco, name=f"runs-{tmp_path.name}")


def _labels(ds, sid, field="predictions") -> list[dict]:
    doc = ds._sample_collection.find_one({"_id": ids.as_oid(sid)}, {field: 1})
    return ((doc or {}).get(field) or {}).get("detections") or []


def _exact(label: dict) -> tuple:
    return (str(label["_id"]), label["label"], bytes(label["mask"]), list(label["bounding_box"]),
            list(label.get("tags") or []))


def _review(ds, tmp_path):
    """Delete, relabel, tag, edit a mask, add and promote on the first sample with six predictions;
    one more label tagged from FiftyOne's Python API. Returns (sample id, reviewed labels, deleted label)."""
    sample = next(s for s in ds if len(s.predictions.detections) >= 6)
    sid, dets = sample.id, sample.predictions.detections
    h, w = sample.metadata.height, sample.metadata.width
    ref = [ed.LabelRef(sid, "predictions", d.id) for d in dets]
    deleted = next(d for d in _labels(ds, sid) if str(d["_id"]) == dets[0].id)
    edited = mk.detection_to_bitmap(dets[3], h, w)
    edited[0:3, 0:3] = True
    added = np.zeros((h, w), bool)
    added[h - 12:h - 2, w - 12:w - 2] = True
    with EditSession(ds, journal_root=tmp_path / "journal") as session:
        session.apply_many([
            ed.DeleteLabels((ref[0],)),
            ed.Relabel((ref[1],), "ring" if dets[1].label != "ring" else "cross"),
            ed.LabelTags((ref[2],), ("checked",)),
            ed.SetMask(ref[3], edited),
            ed.AddInstance(sid, "predictions", "circle", bitmap=added),
            ed.Promote(ref[4], "ground_truth"),
        ])
    sample.reload()
    sample.predictions.detections[-2].tags.append("from_python")  # a tag set outside maskreview
    sample.save()
    reviewed = [d for d in _labels(ds, sid) if str(d["_id"]) in reviewed_ids(
        ds._sample_collection.find_one({"_id": ids.as_oid(sid)}), "predictions")]
    assert len(reviewed) == 6  # relabelled, tagged, mask-edited, added, promoted, tagged in Python
    return sid, reviewed, deleted


def _assert_review_survived(ds, sid, reviewed, deleted):
    labels = _labels(ds, sid)
    by_id = {str(d["_id"]): d for d in labels}
    for label in reviewed:
        assert str(label["_id"]) in by_id, f"reviewed label {label['label']} lost"
        assert _exact(by_id[str(label["_id"])]) == _exact(label)
    assert str(deleted["_id"]) not in by_id
    h, w = ds[sid].metadata.height, ds[sid].metadata.width
    gone = mk.detection_to_bitmap(lb.as_detection(deleted), h, w)
    for label in labels:
        if label["label"] == deleted["label"]:
            other = mk.detection_to_bitmap(lb.as_detection(label), h, w)
            assert (gone & other).sum() / max(1, (gone | other).sum()) < 0.5, "the deleted prediction came back"


# ------------------------------------------------------------------------------ point 1

@pytest.mark.parametrize("scope", ["dataset", "selection", "current"])
def test_rerun_of_the_same_model_keeps_review_work_and_deletions(ds, tmp_path, demo_engine, scope):
    run_inference(ds, demo_engine)
    sid, reviewed, deleted = _review(ds, tmp_path)
    count = len(_labels(ds, sid))
    view = {"dataset": ds.view(), "selection": ds.select([sid, ds.last().id]), "current": ds.select(sid)}[scope]
    report = run_inference(view, demo_engine, overwrite=True)
    assert report.predicted == len(view) and report.kept_reviewed == 6
    _assert_review_survived(ds, sid, reviewed, deleted)
    # the same model predicts the same objects: the untouched ones come back once, no duplicates
    assert len(_labels(ds, sid)) == count
    assert report.dropped_as_deleted == 1 and report.dropped_as_reviewed >= 2  # relabelled and tagged


def test_rerun_without_overwrite_skips_done_samples_and_predicts_new_ones(ds, tmp_path, demo_engine):
    run_inference(ds, demo_engine)
    sid, reviewed, deleted = _review(ds, tmp_path)
    ds._sample_collection.update_one({"_id": ids.as_oid(sid)}, {"$set": {"predictions_run": None}})  # as if cancelled
    report = run_inference(ds, demo_engine)
    assert (report.predicted, report.skipped) == (1, 11)
    _assert_review_survived(ds, sid, reviewed, deleted)


def test_cli_overwrite_replaces_only_untouched_labels_and_says_how_many_were_kept(ds, tmp_path):
    run_cli("infer", ds.name, "--model", "demo", "--device", "cpu", "--max-dets", "12", check=True, timeout=900)
    ds.reload()
    sid, reviewed, deleted = _review(ds, tmp_path)
    proc = run_cli("infer", ds.name, "--model", "demo", "--device", "cpu", "--max-dets", "12", "--overwrite",
                   check=True, timeout=900)
    assert "predicted 12 samples" in proc.stdout and "kept 6 reviewed labels" in proc.stdout
    _assert_review_survived(ds, sid, reviewed, deleted)


# ------------------------------------------------------------------------------ point 2

def test_another_model_gets_its_own_field(ds, tmp_path, demo_engine, tiny_engine):
    assert propose_field(ds, demo_engine) == "predictions"  # the first run may write 'predictions'
    run_inference(ds, demo_engine)
    sid, reviewed, deleted = _review(ds, tmp_path)
    before = [_labels(ds, s) for s in ds.values("id")]
    tiny = f"pred_{slug(tiny_engine.spec.name)}"  # the model folder's name
    assert tiny.startswith("pred_tiny_model")
    with pytest.raises(FieldTakenError, match=f"--field {tiny}") as err:
        run_inference(ds, tiny_engine)
    assert err.value.free_field == tiny and err.value.holder["model"] == "demo"
    assert [_labels(ds, s) for s in ds.values("id")] == before
    field = propose_field(ds, tiny_engine)
    assert field == tiny and propose_field(ds, demo_engine) == "predictions"
    run_inference(ds, tiny_engine, field=field)
    assert [_labels(ds, s) for s in ds.values("id")] == before
    assert propose_field(ds, tiny_engine) == tiny  # its field now
    other = Engine(tiny_engine.spec.name, settings=EngineSettings(device="cpu", score_thresh=0.3, max_detections=8))
    assert propose_field(ds, other) == f"{tiny}_2"  # another threshold is another model
    with pytest.raises(FieldTakenError):
        run_inference(ds, other, field=tiny)
    _assert_review_survived(ds, sid, reviewed, deleted)


def test_another_config_with_the_same_weights_is_another_model(ds, tiny_model, tmp_path, tiny_engine):
    import shutil

    copy = tmp_path / "tiny_model"
    shutil.copytree(tiny_model, copy)
    config = copy / "config.yaml"
    assert "MIN_SIZE_TEST: 256" in config.read_text()
    same = Engine(str(copy), settings=TINY)
    config.write_text(config.read_text().replace("MIN_SIZE_TEST: 256", "MIN_SIZE_TEST: 192"))
    other = Engine(str(copy), settings=TINY)
    assert other.weights_sha256 == tiny_engine.weights_sha256
    run_inference(ds.limit(2), tiny_engine, field="pred_tiny")
    run_inference(ds.limit(2), same, field="pred_tiny")  # a copy of the same model may write there
    with pytest.raises(FieldTakenError):
        run_inference(ds.limit(2), other, field="pred_tiny")


def test_cli_refuses_another_model_in_a_taken_field(ds, tiny_model, demo_engine):
    run_inference(ds, demo_engine)
    before = [_labels(ds, s) for s in ds.values("id")]
    proc = run_cli("infer", ds.name, "--model", str(tiny_model), "--device", "cpu", timeout=900)
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.splitlines() if x.startswith("maskreview")]
    assert len(lines) == 1 and "'predictions' holds the output of another model" in lines[0]
    assert f"--field pred_{slug(str(tiny_model))}" in lines[0]
    assert [_labels(ds, s) for s in ds.values("id")] == before


def test_a_run_snapshot_undoes_and_redoes_it(ds, tmp_path, demo_engine, tiny_engine):
    ids = ds.values("id")[:3]
    first = snapshot_field(ds, "predictions", ids)  # before the field exists
    run_inference(ds.select(ids), demo_engine)
    after_first = snapshot_field(ds, "predictions", ids)
    assert restore_field(ds, first) == ids and "predictions" not in ds.get_field_schema()
    assert provenance(ds, "predictions") is None
    restore_field(ds, after_first)
    assert [_labels(ds, s) for s in ids] == [v[0]["detections"] for v in after_first.values.values()]
    sid, reviewed, deleted = _review(ds, tmp_path)
    before = snapshot_field(ds, "predictions", ids)
    raw_before = [_labels(ds, s) for s in ids]
    run_inference(ds.select(ids), demo_engine, overwrite=True)
    assert [_labels(ds, s) for s in ids] != raw_before  # untouched labels got new ids
    restore_field(ds, before)
    assert [_labels(ds, s) for s in ids] == raw_before
    assert provenance(ds, "predictions")["run_key"] == demo_engine.run_key


# ------------------------------------------------------------------------------ point 3

def test_provenance_is_stored_in_the_dataset_and_on_the_field(fo, ds, demo_engine, tiny_engine):
    run_inference(ds, demo_engine)
    tiny = propose_field(ds, tiny_engine)
    run_inference(ds.limit(2), tiny_engine, field=tiny)
    fresh = fo.load_dataset(ds.name)
    for field, engine in (("predictions", demo_engine), (tiny, tiny_engine)):
        record = provenance(fresh, field)
        for key in ("model", "config", "config_sha256", "weights", "weights_sha256", "classes", "score_thresh",
                    "nms_thresh", "max_detections", "device", "started", "finished", "maskreview_version"):
            assert record.get(key) not in (None, ""), key
        assert record["weights_sha256"] == engine.weights_sha256 and len(record["config_sha256"]) == 64
        assert record["classes"] == engine.classes and record["device"] == "cpu"
        fld = fresh.get_field(field)  # the FiftyOne SDK's own field metadata
        assert fld.info["maskreview_run"]["weights_sha256"] == engine.weights_sha256
        assert engine.spec.name in fld.description
    assert set(prediction_fields(fresh)) == {"predictions", tiny}
    assert provenance(fresh, "ground_truth") is None


# ------------------------------------------------------------------------------ point 4

def test_the_chosen_model_is_remembered_and_fills_only_what_is_missing(fo, ds, tmp_path, demo_engine, tiny_engine):
    run_inference(ds, demo_engine)
    sid, reviewed, deleted = _review(ds, tmp_path)
    demo_before = [_labels(ds, s) for s in ds.values("id")]
    assert chosen_model(ds) is None
    remember_model(ds, ModelChoice(tiny_engine.spec.name, settings=TINY, field="pred_tiny_model"))
    choice = chosen_model(fo.load_dataset(ds.name))
    assert (choice.model, choice.settings, choice.field) == (tiny_engine.spec.name, TINY, "pred_tiny_model")
    run_inference(ds.limit(5), tiny_engine, field="pred_tiny_model")
    assert len(missing_sample_ids(ds.view(), "pred_tiny_model")) == 7
    field, report = fill_missing(ds.view(), tiny_engine, choice.field)
    assert (field, report.predicted, report.skipped) == ("pred_tiny_model", 7, 5)
    assert missing_sample_ids(ds.view(), "pred_tiny_model") == []
    assert [_labels(ds, s) for s in ds.values("id")] == demo_before  # never another model's field
    with pytest.raises(FieldTakenError):
        fill_missing(ds.view(), tiny_engine, "predictions")
    field, report = fill_missing(ds.view(), demo_engine)  # its own field found by provenance
    assert (field, report.predicted) == ("predictions", 0)
    _assert_review_survived(ds, sid, reviewed, deleted)


# ------------------------------------------------------------------------------ point 5

def _all_docs(ds):
    return list(ds._sample_collection.find({}, sort=[("_id", 1)])), dict(ds.info), sorted(ds.get_field_schema())


def test_a_model_that_fails_to_load_changes_nothing(ds, tmp_path, tiny_model, demo_engine):
    run_inference(ds, demo_engine)
    _review(ds, tmp_path)
    before = _all_docs(ds)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 not a checkpoint")
    proc = run_cli("infer", ds.name, "--model", "demo", "--weights", str(bad), "--overwrite", timeout=900)
    assert proc.returncode == 2 and "maskreview: error:" in proc.stderr
    ds.reload()
    assert _all_docs(ds) == before


class _FailsOnSecondBatch(Engine):
    """The demo model, failing the way a model can mid-run (e.g. out of memory) on its second batch."""

    calls = 0

    def infer(self, inputs):  # a dataset run's forward pass
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("CUDA out of memory (simulated)")
        return super().infer(inputs)


def test_a_run_failing_midway_keeps_what_it_wrote_and_erases_nothing(ds, tmp_path, demo_engine):
    run_inference(ds, demo_engine)
    sid, reviewed, deleted = _review(ds, tmp_path)
    ids = ds.values("id")
    order = [sid] + [i for i in ids if i != sid]
    before = {s: _labels(ds, s) for s in ids}
    failing = _FailsOnSecondBatch("demo", settings=DEMO)
    with pytest.raises(RuntimeError, match="simulated"):
        run_inference(ds.select(order, ordered=True), failing, overwrite=True, write_every=1)
    _assert_review_survived(ds, sid, reviewed, deleted)
    after = {s: _labels(ds, s) for s in ids}
    assert [s for s in ids if after[s] != before[s]] == [sid]  # the first batch was written, no other
    assert all(after[s] for s in ids)  # nothing erased
    assert provenance(ds, "predictions")["predicted"] == 1


def test_an_empty_run_records_nothing(ds, demo_engine):
    failing = _FailsOnSecondBatch("demo", settings=DEMO)
    failing.calls = 1
    with pytest.raises(RuntimeError):
        run_inference(ds, failing)
    assert "predictions" not in ds.get_field_schema() and provenance(ds, "predictions") is None


def test_fill_missing_never_overwrites(ds, demo_engine):
    with pytest.raises(BadInputError):
        fill_missing(ds.view(), demo_engine, overwrite=True)
