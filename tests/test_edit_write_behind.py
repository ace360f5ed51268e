"""A dense sample's edit written behind (``EditSession.write_behind``, #17.3): it returns once its
journal line is on disk, while mongod still holds the write back (``fsync`` lock: the real server
refusing writes); nothing is lost, and the session reads and writes as if it had been written at
once: what the write found (written, or someone else's write first) comes back from ``settle``."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from maskreview.core.editing import journal as jn
from maskreview.core.editing import ops as ed
from maskreview.core.editing import session as es
from maskreview.core.store import reader
from maskreview.core.store import writer as sw


def dense_dataset(fo, tmp_path, n: int = 260, size: int = 200):
    """One sample of ``n`` labels (more than ``RESOLVED_LABELS``: a dense scene) over an image of ``size``."""
    import cv2

    rng = np.random.default_rng(0)
    path = tmp_path / "dense.png"
    cv2.imwrite(str(path), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    dets = [fo.Detection(label="cell", bounding_box=[*(float(v) for v in rng.uniform(0, 0.9, 2)), 0.05, 0.05],
                         mask=rng.random((10, 10)) > 0.3) for _ in range(n)]
    ds = fo.Dataset(f"write-behind-{tmp_path.name}")
    ds.add_sample(fo.Sample(filepath=str(path), metadata=fo.ImageMetadata(width=size, height=size),
                            ground_truth=fo.Detections(detections=dets)))
    return ds


@contextmanager
def writes_held(ds):
    """mongod takes no write while inside (``fsync`` with ``lock``); reads go on."""
    admin = reader.collection(ds).database.client.admin
    admin.command("fsync", lock=True)
    try:
        yield
    finally:
        admin.command("fsyncUnlock")


def _mask_of(ds, sid, label_id):
    doc = reader.by_ids(ds, [sid], ["ground_truth"])[sid]
    return next(d["mask"] for d in doc["ground_truth"]["detections"] if str(d["_id"]) == label_id)


def _grown(ds, sid, label_id):
    bitmap = np.zeros((200, 200), bool)
    bitmap[20:60, 30:80] = True
    return ed.SetMask(ed.LabelRef(sid, "ground_truth", label_id), bitmap)


def test_an_edit_returns_journaled_while_its_write_is_held_and_lands_on_settle(fo, tmp_path):
    ds = dense_dataset(fo, tmp_path)
    sid = ds.first().id
    ids = [d.id for d in ds.first().ground_truth.detections]
    landed = threading.Event()
    with es.EditSession(ds, journal_root=tmp_path / "journal") as session:
        session.write_behind(landed.set)
        session.apply(_grown(ds, sid, ids[0]))  # the first edit declares the snapshot field (a schema write)
        assert session.settle() and not session.writing
        before = _mask_of(ds, sid, ids[1])
        landed.clear()
        with writes_held(ds):
            change = session.apply(_grown(ds, sid, ids[1]))
            assert session.writing and not landed.is_set()
            assert _mask_of(ds, sid, ids[1]) == before  # not in the database yet
            entries, damaged = jn._pending_entries(session.journal.path)  # on disk, as a replay reads it
            assert not damaged and [p.sample_id for _, patches in entries for p in patches] == [sid]
        assert landed.wait(30)
        outcomes = session.settle()
        assert [(o.error, o.queued) for o in outcomes] == [(None, False)]
        assert [p.result for p in outcomes[0].change.patches] == [p.result for p in change.patches]
        assert _mask_of(ds, sid, ids[1]) != before
        assert not session.journal.pending and session.settle() == []
        # an undo (the session's write) goes behind too; the next edit lands it first, in order
        session.write(change.inverse())
        assert session.writing
        second = session.apply(_grown(ds, sid, ids[2]))
        outcomes = session.settle()
        assert [o.error for o in outcomes] == [None, None]
        assert outcomes[1].change.patches[-1].result == second.patches[-1].result
        assert _mask_of(ds, sid, ids[1]) == before
        assert session.cached_document(sid)["ground_truth"] == reader.by_ids(ds, [sid], ["ground_truth"])[sid]["ground_truth"]


def test_a_write_behind_that_finds_someone_elses_write_first_comes_back_as_a_conflict(fo, tmp_path):
    ds = dense_dataset(fo, tmp_path)
    sid = ds.first().id
    ids = [d.id for d in ds.first().ground_truth.detections]
    with es.EditSession(ds, journal_root=tmp_path / "journal") as session:
        session.write_behind(lambda: None)
        session.apply(_grown(ds, sid, ids[0]))
        session.settle()
        theirs = sw.revised({"$set": {"ground_truth.detections.5.label": "theirs"}}, "someone-else")
        reader.collection(ds).update_one({"_id": ds.first()._id}, theirs)
        session.apply(_grown(ds, sid, ids[1]))  # on the cached version: written behind, refused there
        [outcome] = session.settle()
        assert isinstance(outcome.error, es.ConflictError) and outcome.error.sample_ids == [sid]
        doc = reader.by_ids(ds, [sid], ["ground_truth"])[sid]
        assert doc["ground_truth"]["detections"][5]["label"] == "theirs"
        assert not session.journal.pending  # marked rejected: not replayed over theirs
        assert session.cached_document(sid) is None  # read again next time


def test_a_small_sample_is_written_at_once(fo, tmp_path):
    ds = dense_dataset(fo, tmp_path, n=20)
    sid = ds.first().id
    label = ds.first().ground_truth.detections[0].id
    with es.EditSession(ds, journal_root=tmp_path / "journal") as session:
        session.write_behind(lambda: None)
        session.apply(_grown(ds, sid, label))
        assert not session.writing and session.settle() == []
