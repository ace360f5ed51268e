"""Edit ops, their inverses, the non-destructive snapshot, write-back and what other readers see."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from maskreview.core.editing import ops as ed
from maskreview.core.editing import changes as ch
from maskreview.core.store import codec
from maskreview.core import masks as mk
from maskreview.core.errors import BadInputError
from maskreview.core.sources import open_source
from maskreview.core.editing.session import VERSION_FIELDS, EditSession

from helpers_edits import journal_only, same_database_env


@pytest.fixture
def ds(fo, demo_coco, tmp_path):
    return open_source(demo_coco, name=f"edits-{tmp_path.name}")


@pytest.fixture
def session(ds, tmp_path):
    with EditSession(ds, journal_root=tmp_path / "journal") as s:
        yield s


def _raw(ds, sid):
    doc = ds._sample_collection.find_one({"_id": ds[sid]._id})
    for name in VERSION_FIELDS:  # bookkeeping: every write changes it
        doc.pop(name, None)
    for name in [k for k, v in doc.items() if k.endswith("_original") and not (v or {}).get("detections")]:
        doc.pop(name)  # an emptied snapshot container is the same as none
    return doc


def _ref(sample, i=0, field="ground_truth"):
    return ed.LabelRef(sample.id, field, sample[field].detections[i].id)


def _bitmap(sample, i=0, field="ground_truth"):
    return mk.detection_to_bitmap(sample[field].detections[i], sample.metadata.height, sample.metadata.width)


def test_every_op_and_its_inverse(ds, session):
    sample = ds.first()
    sample2 = ds.skip(1).first()
    originals = {s.id: _raw(ds, s.id) for s in (sample, sample2)}
    h, w = sample.metadata.height, sample.metadata.width
    painted = _bitmap(sample)
    painted[0:4, 0:4] = True  # along the image border, away from the object
    ops = [
        ed.Relabel((_ref(sample),), "renamed"),
        ed.SetMask(_ref(sample), painted),
        ed.SampleTags((sample.id, sample2.id), ("fp", "reviewed")),
        ed.LabelTags((_ref(sample, 1), _ref(sample2)), ("bad-boundary",)),
        ed.DeleteLabels((_ref(sample, 1),)),
        ed.AddInstance(sample.id, "ground_truth", "added", polygons=((100, 100, 140, 100, 140, 130, 100, 130),)),
    ]
    changes = [session.apply(op) for op in ops]
    sample.reload()
    labels = {d.id: d for d in sample.ground_truth.detections}
    edited = labels[ops[0].labels[0].label_id]
    assert edited.label == "renamed"
    assert np.array_equal(mk.detection_to_bitmap(edited, h, w), painted)
    assert edited.bounding_box[:2] == [0.0, 0.0]  # the box followed the mask to the corner
    assert set(sample.tags) >= {"fp", "reviewed"} and "reviewed" in ds[sample2.id].tags
    assert ds[sample2.id].ground_truth.detections[0].tags == ["bad-boundary"]
    assert ops[4].labels[0].label_id not in labels
    added = labels[ops[5].label_id]
    assert added.label == "added" and added["review_added"] is True
    assert mk.detection_to_bitmap(added, h, w).sum() == 40 * 30
    # the pre-review state of the two edited labels is kept
    snaps = {d["original_of"]: d for d in sample.ground_truth_original.detections}
    assert set(snaps) == {ops[0].labels[0].label_id, ops[4].labels[0].label_id}

    for change in reversed(changes):
        session.write(change.inverse())
    assert {s: _raw(ds, s) for s in originals} == originals
    for change in changes:  # redo all, then compare with the state after the ops
        session.write(change)
    assert ds[sample.id].ground_truth.detections[0].label == "renamed"


def test_restore_original_after_several_edits(ds, session):
    sample = ds.first()
    original = _raw(ds, sample.id)
    ref0, ref1 = _ref(sample, 0), _ref(sample, 1)
    empty = np.zeros((sample.metadata.height, sample.metadata.width), bool)
    empty[50:60, 50:52] = True
    session.apply(ed.Relabel((ref0,), "x"))
    session.apply(ed.SetMask(ref0, empty))
    session.apply(ed.Relabel((ref0,), "y"))
    session.apply(ed.DeleteLabels((ref1,)))
    add = ed.AddInstance(sample.id, "ground_truth", "new", bitmap=empty)
    session.apply(add)
    session.apply(ed.RestoreOriginal(ref0))
    session.apply(ed.RestoreOriginal(ref1))  # a deleted label comes back at its place
    session.apply(ed.RestoreOriginal(ed.LabelRef(sample.id, "ground_truth", add.label_id)))  # added: goes
    assert _raw(ds, sample.id) == original


def test_promote_keeps_provenance(ds, session, fo):
    sample = ds.first()
    pred = sample.ground_truth.detections[0].copy()
    pred.confidence = 0.875
    sample["predictions"] = fo.Detections(detections=[pred])
    sample.save()
    ds.info["maskreview_runs"] = {"predictions": {"model": "demo", "weights_sha256": "abc", "run_key": "k1"}}
    ds.save()
    session.track(sample.id)
    ref = _ref(ds[sample.id], 0, "predictions")
    op = ed.Promote(ref, "ground_truth")
    session.apply(op)
    gt = {d.id: d for d in ds[sample.id].ground_truth.detections}[op.label_id]
    assert (gt["source_field"], gt["source_label_id"], gt["source_score"], gt["source_model"],
            gt["source_run_key"]) == ("predictions", ref.label_id, 0.875, "demo", "k1")
    assert gt.confidence is None and gt.label == pred.label
    h, w = sample.metadata.height, sample.metadata.width
    assert np.array_equal(mk.detection_to_bitmap(gt, h, w), mk.detection_to_bitmap(pred, h, w))


def test_overlapping_instances_stay_separate(ds, session):
    sample = ds.first()
    h, w = sample.metadata.height, sample.metadata.width
    a = np.zeros((h, w), bool)
    a[20:80, 20:80] = True
    b = np.zeros((h, w), bool)
    b[50:110, 50:110] = True
    op_a = ed.AddInstance(sample.id, "ground_truth", "a", bitmap=a)
    op_b = ed.AddInstance(sample.id, "ground_truth", "b", bitmap=b)
    session.apply_many([op_a, op_b])
    erased = a.copy()
    erased[60:70, 60:70] = False  # erase inside the overlap, on a only
    session.apply(ed.SetMask(ed.LabelRef(sample.id, "ground_truth", op_a.label_id), erased))
    labels = {d.id: d for d in ds[sample.id].ground_truth.detections}
    assert np.array_equal(mk.detection_to_bitmap(labels[op_a.label_id], h, w), erased)
    assert np.array_equal(mk.detection_to_bitmap(labels[op_b.label_id], h, w), b)


def test_batch_resolves_ops_on_the_same_sample_in_order(ds, session):
    sample = ds.first()
    ref = _ref(sample)
    session.apply_many([ed.Relabel((ref,), "a"), ed.LabelTags((ref,), ("t",)), ed.Relabel((ref,), "b"),
                        ed.SampleTags((sample.id,), ("x",), "toggle"), ed.SampleTags((sample.id,), ("x",), "toggle")])
    det = ds[sample.id].ground_truth.detections[0]
    assert det.label == "b" and det.tags == ["t"] and "x" not in ds[sample.id].tags
    snaps = ds[sample.id].ground_truth_original.detections
    assert len(snaps) == 1 and snaps[0].label != "a"  # one snapshot: the pre-review label


def test_batch_writes_the_samples_still_current_and_reports_those_changed_meanwhile(ds, session, monkeypatch):
    from datetime import datetime, timedelta

    from maskreview.core.editing.session import ConflictError

    samples = [s for s in ds.iter_samples() if s.ground_truth and s.ground_truth.detections][:3]
    theirs = samples[1]
    append = session.journal.append

    def racing(changes):  # another writer between this session's read and its write
        seqs = append(changes)
        ds._sample_collection.update_one({"_id": theirs._id}, {"$set": {
            "tags": ["theirs"], "last_modified_at": datetime.utcnow() + timedelta(seconds=5)}})
        return seqs

    monkeypatch.setattr(session.journal, "append", racing)
    with pytest.raises(ConflictError) as err:
        session.apply_many([ed.Relabel((_ref(s),), "mine") for s in samples])
    assert err.value.sample_ids == [theirs.id]
    assert [ds[s.id].ground_truth.detections[0].label == "mine" for s in samples] == [True, False, True]
    assert ds[theirs.id].tags == ["theirs"]


def test_bad_input(ds, session, fo, tmp_path):
    sample = ds.first()
    sample["note"] = "text"
    sample.save()
    with pytest.raises(BadInputError, match="does not hold Detections"):
        session.apply(ed.AddInstance(sample.id, "note", "x", polygons=((1, 1, 5, 1, 5, 5),)))
    ds.add_sample_field("locked", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections, read_only=True)
    with pytest.raises(BadInputError, match="read-only"):
        session.apply(ed.AddInstance(sample.id, "locked", "x", polygons=((1, 1, 5, 1, 5, 5),)))
    gone = fo.Sample(filepath=str(tmp_path / "gone.png"))
    ds.add_sample(gone)
    with pytest.raises(BadInputError, match="image cannot be read"):
        session.apply(ed.AddInstance(gone.id, "ground_truth", "x", polygons=((1, 1, 5, 1, 5, 5),)))
    session.apply(ed.SampleTags((gone.id,), ("fp",)))  # tagging needs no image
    assert ds[gone.id].tags == ["fp"]
    with pytest.raises(BadInputError, match="does not match the image"):
        session.apply(ed.SetMask(_ref(sample), np.zeros((3, 3), bool)))


def test_journal_replays_what_never_reached_the_database(ds, tmp_path):
    root = tmp_path / "j"
    sample = ds.first()
    s1 = EditSession(ds, journal_root=root)
    journal_only(s1, ed.Relabel((_ref(sample),), "from-journal"))
    os.close(s1.journal._fd)  # journaled, then the process "dies" before writing
    assert ds[sample.id].ground_truth.detections[0].label != "from-journal"
    s2 = EditSession(ds, journal_root=root)
    assert s2.replayed["applied"] == 1 and not s2.replayed["conflicts"]
    assert ds[sample.id].ground_truth.detections[0].label == "from-journal"
    s2.close()
    assert not list((root / str(ds._doc.id)).glob("*.jsonl"))  # replayed and closed cleanly


def test_journal_lines_round_trip_as_bson_or_json():
    from datetime import datetime

    from bson import ObjectId

    from maskreview.core.editing import journal as jn

    stamp = datetime(2026, 11, 26, 1, 2, 3, 4000)
    snap = {"_id": ObjectId(), "mask": codec.encode_mask(np.eye(5, dtype=bool)), "bounding_box": [0.1, 0.2, 0.3, 0.4]}
    edit = ch.SamplePatch("s1", [ch.LabelPatch("gt_original", str(snap["_id"]), None, snap),
                                 ch.LabelPatch("gt", "l1", {"label": "a"}, {"label": "b"}, whole=False)],
                          ["t"], [], ch.Version(3, "s-a", stamp), ch.Version(4, "s-b", stamp + (stamp - datetime(2026, 11, 26))))
    odd = ch.SamplePatch("s2", [ch.LabelPatch("gt", "l2", None, {"score": np.float32(0.5)}, 2)])  # not BSON
    for patch, form in ((edit, "bson"), (odd, "patches")):
        line = jn.entry_line(7, [patch])
        record = json.loads(line)
        assert record["seq"] == 7 and form in record and '"seq": 7' in line
        (back,) = jn.entry_patches(record)
        assert (back.sample_id, back.tags_add, back.tags_remove, back.expect, back.result) == (
            patch.sample_id, patch.tags_add, patch.tags_remove, patch.expect, patch.result)
        assert [(lp.field, lp.label_id, lp.after, lp.index, lp.whole) for lp in back.labels] == [
            (lp.field, lp.label_id, lp.after, lp.index, lp.whole) for lp in patch.labels]
        if form == "bson":
            assert np.array_equal(codec.decode_mask(back.labels[0].after["mask"]), np.eye(5, dtype=bool))


_READER = """
import json, sys
from maskreview.core import store
fo = store.connect()
ds = fo.load_dataset(sys.argv[1])
s = ds[sys.argv[2]]
print(json.dumps({"tags": s.tags, "labels": [d.label for d in s.ground_truth.detections],
                  "label_tags": ds.count_label_tags(), "ids": [d.id for d in s.ground_truth.detections],
                  "schema": sorted(ds.get_field_schema(flat=True)),
                  "undeclared": sorted(ds.get_dynamic_field_schema() or {})}))
"""


def test_another_process_sees_edits_tags_and_their_schema(ds, session, fo):
    sample = ds.first()
    pred = sample.ground_truth.detections[2].copy()
    pred.confidence = 0.5
    sample["predictions"] = fo.Detections(detections=[pred])
    sample.save()
    session.track(sample.id)
    ref = _ref(sample, 1)
    session.apply_many([ed.Relabel((_ref(sample),), "seen"), ed.SampleTags((sample.id,), ("reviewed",)),
                        ed.LabelTags((_ref(sample),), ("fp",)), ed.DeleteLabels((ref,)),
                        ed.Promote(_ref(ds[sample.id], 0, "predictions"))])
    out = subprocess.run([sys.executable, "-c", _READER, ds.name, sample.id], capture_output=True, text=True,
                         env=same_database_env(), check=True, timeout=600).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["tags"] == ["reviewed"] and seen["labels"][0] == "seen"
    assert seen["label_tags"] == {"fp": 1} and ref.label_id not in seen["ids"]
    # what edits add to labels is declared, so the FiftyOne App lists it
    for attr in ("review_added", "source_field", "source_label_id", "source_score", "source_model"):
        assert f"ground_truth.detections.{attr}" in seen["schema"]
    for attr in ("original_of", "original_index", "iscrowd"):
        assert f"ground_truth_original.detections.{attr}" in seen["schema"]
    assert not [f for f in seen["undeclared"] if f.startswith("ground_truth")], seen["undeclared"]
