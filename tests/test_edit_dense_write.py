"""An edit in a dense sample (a field of more than ``RESOLVED_LABELS`` labels) is written by its
patch update (the labels it changes), not by sending the whole resolved field again (#17.3); the
database must then hold exactly what the resolver made, edit after edit, undo included."""

from __future__ import annotations

import numpy as np

from maskreview.core.editing import ops as ed
from maskreview.core.editing import session as es
from maskreview.core.fields import original_field
from maskreview.core.store import reader


def _dense(fo, tmp_path, n: int = 260):
    rng = np.random.default_rng(0)
    dets = []
    for k in range(n):
        x, y = (float(v) for v in rng.uniform(0, 0.9, 2))
        dets.append(fo.Detection(label="cell", bounding_box=[x, y, 0.05, 0.05], mask=rng.random((10, 10)) > 0.3))
    ds = fo.Dataset(f"dense-write-{tmp_path.name}")
    ds.add_sample(fo.Sample(filepath=str(tmp_path / "x.png"), metadata=fo.ImageMetadata(width=200, height=200),
                            ground_truth=fo.Detections(detections=dets)))
    return ds


def test_a_dense_sample_is_written_by_patch_and_holds_what_was_resolved(fo, tmp_path, monkeypatch):
    ds = _dense(fo, tmp_path)
    sid = ds.first().id
    ids = [d.id for d in ds.first().ground_truth.detections]
    whole = []
    real = es.sw.resolved_updates
    monkeypatch.setattr(es.sw, "resolved_updates", lambda patches, docs: (whole.extend(patches), real(patches, docs))[1])
    bitmap = np.zeros((200, 200), bool)
    bitmap[40:70, 50:90] = True
    ref = lambda i: ed.LabelRef(sid, "ground_truth", ids[i])  # noqa: E731
    fields = ["ground_truth", original_field("ground_truth")]
    original = reader.by_ids(ds, [sid], fields)[sid]
    with es.EditSession(ds, journal_root=tmp_path / "journal") as session:
        done = []
        for op in (ed.SetMask(ref(3), bitmap), ed.Relabel((ref(7),), "nucleus"), ed.DeleteLabels((ref(11),)),
                   ed.AddInstance(sid, "ground_truth", "debris", bitmap=bitmap)):
            done.append(session.apply(op))
            stored = reader.by_ids(ds, [sid], fields)[sid]
            resolved = session.cached_document(sid)
            for f in fields:
                assert stored.get(f) == resolved.get(f), f
        assert not whole  # every write was the patch's
        for change in reversed(done):
            session.write(change.inverse())
        back = reader.by_ids(ds, [sid], fields)[sid]
        assert back["ground_truth"] == original["ground_truth"]  # every label back, in its place


def test_a_label_keys_patch_is_an_array_filter_update_that_writes_what_the_pipeline_writes(fo, tmp_path):
    """A patch that only changes keys of labels goes to mongod as ``$set`` of those keys by array
    filter (not the pipeline that rebuilds all 260 labels through ``$map``); both forms must leave
    the sample the same, for two labels, the same label twice and a key set to null; a patch that
    adds, removes or tags keeps the pipeline."""
    from maskreview.core.editing.changes import LabelPatch, SamplePatch, Version
    from maskreview.core.store import writer as sw

    ds = _dense(fo, tmp_path)
    ds.add_samples([_dense(fo, tmp_path / f"{tmp_path.name}-b").first()])  # the same labels (new ids) in a second sample
    a, b = ds.values("id")
    docs = reader.by_ids(ds, [a, b], ["ground_truth", *es.VERSION_FIELDS])
    strip = lambda field: [{k: v for k, v in d.items() if k != "_id"} for d in field["detections"]]  # noqa: E731
    assert strip(docs[a]["ground_truth"]) == strip(docs[b]["ground_truth"])
    writer = sw.SampleWriter(ds, durable=True)
    for sid, form in ((a, "keys"), (b, "pipeline")):
        ids = [str(d["_id"]) for d in docs[sid]["ground_truth"]["detections"]]
        labels = [LabelPatch("ground_truth", ids[5], {"label": "cell"}, {"label": "nucleus", "confidence": None}, whole=False),
                  LabelPatch("ground_truth", ids[200], {"label": "cell"}, {"label": "x", "tags": ["t"]}, whole=False),
                  LabelPatch("ground_truth", ids[5], {"label": "nucleus"}, {"label": "debris"}, whole=False)]
        expect = es.version_of(docs[sid])
        p = SamplePatch(sid, labels, expect=expect, result=Version(expect.rev + 1, "test", sw.now_ms()))
        update = sw.patch_update(p)
        assert update.array_filters is not None
        if form == "pipeline":  # what the patch update was before: the pipeline
            update = sw.Update(update.filter, [{"$set": sw.update_expression(p)}])
        assert writer.update_one(update) == 1
        assert writer.update_one(update) == 0  # conditional on the version it expects
        if form == "keys":
            for other in (SamplePatch(sid, labels[:1], tags_add=["x"], expect=expect, result=expect),
                          SamplePatch(sid, [LabelPatch("ground_truth", ids[1], {"label": "cell"}, None, 1)],
                                      expect=expect, result=expect),
                          SamplePatch(sid, labels[:1], expect=None, result=expect)):
                assert sw.patch_update(other).array_filters is None
    after = reader.by_ids(ds, [a, b], ["ground_truth"])
    assert strip(after[a]["ground_truth"]) == strip(after[b]["ground_truth"]) != strip(docs[a]["ground_truth"])
    got = after[a]["ground_truth"]["detections"]
    assert got[5]["label"] == "debris" and got[5]["confidence"] is None
    assert got[200]["tags"] == ["t"] and got[200]["label"] == "x" and len(got) == 260
    assert [d["_id"] for d in got] == [d["_id"] for d in docs[a]["ground_truth"]["detections"]]


def test_a_label_added_or_removed_in_a_held_array_is_pushed_or_pulled_and_writes_what_the_pipeline_writes(fo, tmp_path):
    """A label's first edit (its snapshot appended to ``<field>_original``, its keys set) and the
    undo (the snapshot removed by id, the keys set back) go to mongod as ``$set`` / ``$push`` /
    ``$pull``, not the pipeline that rebuilds the label arrays, when the caller knows the field
    holds its array at the version written on; both forms leave the sample the same. A field
    whose array is missing or null keeps the pipeline (``$push`` would leave it without ``_cls`` or
    fail), and a label put at a position keeps it too."""
    from bson import ObjectId

    from maskreview.core.editing.changes import LabelPatch, SamplePatch, Version
    from maskreview.core.editing.labels import label_arrays
    from maskreview.core.store import writer as sw

    orig = original_field("ground_truth")
    ds = _dense(fo, tmp_path)
    ds.add_samples([_dense(fo, tmp_path / f"{tmp_path.name}-b").first()])
    a, b = ds.values("id")
    for sid in (a, b):
        sample = ds[sid]
        sample[orig] = fo.Detections(detections=[fo.Detection(label="cell", bounding_box=[0, 0, 0.1, 0.1])])
        sample.save()
    fields = ["ground_truth", orig, *es.VERSION_FIELDS]
    docs = reader.by_ids(ds, [a, b], fields)
    strip = lambda doc: {f: [{k: v for k, v in d.items() if k != "_id"} for d in doc[f]["detections"]]  # noqa: E731
                         for f in ("ground_truth", orig)}
    writer = sw.SampleWriter(ds, durable=True)
    snap_id = ObjectId()
    for sid, form in ((a, "document"), (b, "pipeline")):
        doc = docs[sid]
        live = doc["ground_truth"]["detections"][5]
        snap = {**live, "_id": snap_id}
        edit = [LabelPatch(orig, str(snap_id), None, snap),
                LabelPatch("ground_truth", str(live["_id"]), {"label": "cell"}, {"label": "nucleus"}, whole=False)]
        undo = [lp.inverse() for lp in reversed(edit)]
        version = es.version_of(doc)
        for labels in (edit, undo):
            result = Version(version.rev + 1, "test", sw.now_ms())
            p = SamplePatch(sid, labels, expect=version, result=result)
            update = sw.patch_update(p, label_arrays(doc))
            assert isinstance(update.update, dict) and ("$push" in update.update) == (labels is edit)
            if form == "pipeline":
                update = sw.Update(update.filter, [{"$set": sw.update_expression(p)}])
            assert writer.update_one(update) == 1
            if labels is edit:
                edited = reader.by_ids(ds, [sid], fields)[sid]
                assert [d["_id"] for d in edited[orig]["detections"]][-1] == snap_id
                assert edited["ground_truth"]["detections"][5]["label"] == "nucleus"
                if form == "pipeline":
                    assert strip(edited) == strip(seen)
                seen = edited
            version = result
        back = reader.by_ids(ds, [sid], fields)[sid]
        assert strip(back) == strip(doc)  # the snapshot gone, the label as it was
    held = label_arrays(docs[a])
    assert {"ground_truth", orig} <= held
    add = LabelPatch(orig, str(snap_id), None, {"_id": snap_id, "label": "x"})
    expect = es.version_of(docs[a])
    for arrays, labels in (((), [add]), ({"ground_truth"}, [add]),  # not known to hold its array
                           (held, [LabelPatch(orig, str(snap_id), None, {"_id": snap_id, "label": "x"}, 0)])):
        p = SamplePatch(a, labels, expect=expect, result=expect)
        assert isinstance(sw.patch_update(p, arrays).update, list)
    from maskreview.core.store.ids import as_oid

    assert writer.update_one(sw.Update({"_id": as_oid(a)}, {"$set": {orig: None}})) == 1  # as FiftyOne stores a cleared field
    null = reader.by_ids(ds, [a], fields)[a]
    assert orig not in label_arrays(null) and null.get(orig, "missing") is None
    expect = es.version_of(null)
    p = SamplePatch(a, [add], expect=expect, result=Version(expect.rev + 1, "test", sw.now_ms()))
    update = sw.patch_update(p, label_arrays(null))
    assert isinstance(update.update, list) and writer.update_one(update) == 1
    assert reader.by_ids(ds, [a], [orig])[a][orig] == {"_cls": "Detections", "detections": [{"_id": snap_id, "label": "x"}]}
