"""An edit of a dense sample this session last read or wrote is resolved against the document it
keeps and written conditional on that version (#17.3, the window edit row): the ~1 MB field is
not read back first. Anyone else's write since changes ``review_rev`` or ``last_modified_at``,
the conditional write matches nothing, and the edit is refused as before (nothing overwritten)."""

from __future__ import annotations

import numpy as np
import pytest

from test_edit_dense_write import _dense

from maskreview.core.editing import ops as ed
from maskreview.core.editing import session as es
from maskreview.core.fields import original_field
from maskreview.core.store import ids, reader
from maskreview.core.store.writer import revised

FIELDS = ["ground_truth", original_field("ground_truth")]


@pytest.fixture()
def dense(fo, tmp_path, monkeypatch):
    ds = _dense(fo, tmp_path)
    sample = ds.first()
    reads = []  # the label fields each read of the edit session asked for (the real reader, counted)
    real = reader.by_ids
    monkeypatch.setattr(reader, "by_ids", lambda d, s, fields=None: (
        reads.append(sorted(set(fields or ()) & set(FIELDS))), real(d, s, fields))[1])
    sid, labels = sample.id, [d.id for d in sample.ground_truth.detections]
    del sample  # no FiftyOne Sample in memory: a write then reads nothing to bring one up to date
    with es.EditSession(ds, journal_root=tmp_path / "journal") as session:
        session.track(sid)
        yield ds, sid, labels, session, reads


def _stored(ds, sid) -> dict:
    return reader.collection(ds).find_one({"_id": ids.as_oid(sid)}, dict.fromkeys(FIELDS, 1))


def test_an_edit_after_this_sessions_own_writes_does_not_read_the_field_back(dense):
    ds, sid, labels, session, reads = dense
    ref = lambda i: ed.LabelRef(sid, "ground_truth", labels[i])  # noqa: E731
    bitmap = np.zeros((200, 200), bool)
    bitmap[40:70, 50:90] = True
    first = session.apply(ed.Relabel((ref(2),), "nucleus"))  # read: nothing known yet
    assert [r for r in reads if r] == [FIELDS]
    del reads[:]
    done = [session.apply(ed.SetMask(ref(3), bitmap))]
    session.write(done[0].inverse())  # undo: the kept document is patched as the database is
    done += [session.write(done[0]), session.apply(ed.DeleteLabels((ref(11),))),
             session.apply(ed.AddInstance(sid, "ground_truth", "debris", bitmap=bitmap))]
    assert not [r for r in reads if r], "an edit read the field back"
    stored, kept = _stored(ds, sid), session.cached_document(sid)
    for f in FIELDS:  # what the next edit resolves against is exactly what the database holds
        assert kept[f] == stored[f], f
    for change in reversed([first, *done]):
        session.write(change.inverse())
    assert session.cached_document(sid)["ground_truth"] == _stored(ds, sid)["ground_truth"]


@pytest.mark.parametrize("writer", ["fiftyone save", "model run, same millisecond"])
def test_an_edit_after_another_writers_change_is_refused_not_written_over_theirs(dense, writer):
    ds, sid, labels, session, reads = dense
    ref = lambda i: ed.LabelRef(sid, "ground_truth", labels[i])  # noqa: E731
    session.apply(ed.Relabel((ref(2),), "nucleus"))  # the session now keeps the document
    if writer == "fiftyone save":  # FiftyOne's own write: last_modified_at, no revision
        sample = ds[sid]
        sample.ground_truth.detections[5].label = "theirs"
        sample.save()
    else:  # a maskreview writer stamped in the editor's very millisecond: the revision only
        dets = _stored(ds, sid)["ground_truth"]["detections"]
        dets[5] = {**dets[5], "label": "theirs"}
        reader.collection(ds).update_one({"_id": ids.as_oid(sid)},
                                         revised({"$set": {"ground_truth.detections": dets}}, "another-run"))
    theirs = _stored(ds, sid)
    with pytest.raises(es.ConflictError) as err:
        session.apply(ed.Relabel((ref(7),), "stale-edit"))
    assert err.value.sample_ids == [sid] and isinstance(err.value.op, ed.Relabel)  # as when read first
    assert _stored(ds, sid) == theirs  # nothing of the edit written, their label kept
    session.apply(err.value.op, force=True)  # keep mine: on top of theirs
    after = _stored(ds, sid)["ground_truth"]["detections"]
    assert after[5]["label"] == "theirs" and after[7]["label"] == "stale-edit" and after[2]["label"] == "nucleus"


def test_edits_of_two_dense_fields_in_turn_read_each_field_once(fo, tmp_path, monkeypatch):
    ds = _dense(fo, tmp_path)
    sample = ds.first()
    sample["predictions"] = fo.Detections(detections=[fo.Detection(label="cell", bounding_box=d.bounding_box, mask=d.mask)
                                                      for d in sample.ground_truth.detections])
    sample.save()
    sid = sample.id
    refs = {f: [ed.LabelRef(sid, f, d.id) for d in sample[f].detections] for f in ("ground_truth", "predictions")}
    del sample
    reads = []
    real = reader.by_ids
    monkeypatch.setattr(reader, "by_ids", lambda d, s, fields=None: (
        reads.append(sorted(f for f in (fields or ()) if f in refs)), real(d, s, fields))[1])
    with es.EditSession(ds, journal_root=tmp_path / "journal") as session:
        session.track(sid)
        for i in range(3):
            for f in refs:
                change = session.apply(ed.Relabel((refs[f][i],), f"edited-{i}"))
                session.write(change.inverse())
                session.write(change)
        assert [r for r in reads if r] == [["ground_truth"], ["predictions"]]
        stored = reader.collection(ds).find_one({"_id": ids.as_oid(sid)})
        kept = session.cached_document(sid)
        for f in (*refs, *map(original_field, refs)):
            assert kept[f] == stored[f], f


def test_versions_read_on_another_thread_are_not_taken_over_this_sessions_later_write(dense):
    """A model run reads the versions of the samples it wrote on its own thread (#17, the stall
    row); an edit made here before the GUI takes them makes that read stale: it is read again,
    and the next edit is based on the edit's version (no conflict, nothing refused)."""
    ds, sid, labels, session, reads = dense
    ref = lambda i: ed.LabelRef(sid, "ground_truth", labels[i])  # noqa: E731
    fresh = session.read_versions([sid])
    session.track([sid], read=fresh)
    assert session.versions[sid] == fresh[sid][1]
    stale = session.read_versions([sid])
    session.apply(ed.Relabel((ref(2),), "nucleus"))  # after the read began, before it is taken
    session.track([sid], read=stale)
    stored = reader.by_ids(ds, [sid], es.VERSION_FIELDS)[sid]
    assert session.versions[sid] == es.version_of(stored)
    assert session.versions[sid] != stale[sid][1]
    session.apply(ed.Relabel((ref(3),), "debris"))  # no ConflictError
    assert reader.collection(ds).find_one({"_id": ids.as_oid(sid)})["ground_truth"]["detections"][3]["label"] == "debris"
