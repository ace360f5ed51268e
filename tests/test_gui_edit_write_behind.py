"""In the window, a dense sample's edit and its undo are drawn from their patches while mongod still
holds the write back (#17.3: the redraw does not wait for the database); what reads the database
(the panels' ``sample_changed``, ``written``, a sample read again) comes after the write landed."""

from __future__ import annotations

import threading

import numpy as np

from helpers_gui import open_window
from maskreview.core.store import reader
from test_edit_write_behind import _grown, _mask_of, dense_dataset


def _hold_writes_for(ds, seconds: float) -> threading.Event:
    """mongod takes no write for ``seconds`` (``fsync`` lock); the event is set just before it
    takes them again (a write the caller waited for can only have returned after it)."""
    admin = reader.collection(ds).database.client.admin
    admin.command("fsync", lock=True)
    released = threading.Event()

    def release():
        released.set()
        admin.command("fsyncUnlock")

    threading.Timer(seconds, release).start()
    return released


def test_a_dense_edit_and_its_undo_are_drawn_before_their_writes_land(qtbot, fo, tmp_path):
    ds = dense_dataset(fo, tmp_path)
    sid = ds.first().id
    ids = [d.id for d in ds.first().ground_truth.detections]
    win = open_window(qtbot, tmp_path, ds)
    try:
        canvas, edits = win.canvas, win.edits
        qtbot.waitUntil(lambda: canvas.data is not None and canvas.data.sample_id == sid)
        win.features.editing.apply(_grown(ds, sid, ids[0]))  # declares the snapshot field (a schema write)
        qtbot.waitUntil(lambda: not getattr(edits.session, "writing", False))  # (no such state before write-behind)
        shown_ids, written = [], []
        win.sample_changed.connect(shown_ids.append)
        edits.written.connect(written.append)
        before = _mask_of(ds, sid, ids[1])
        old = next(i for i in canvas.data.fields["ground_truth"] if i.id == ids[1])

        released = _hold_writes_for(ds, 5.0)
        change = win.features.editing.apply(_grown(ds, sid, ids[1]))
        assert not released.is_set(), "the edit waited for its database write"
        drawn = next(i for i in canvas.data.fields["ground_truth"] if i.id == ids[1])
        assert drawn.full_mask().sum() != old.full_mask().sum()  # the canvas shows the edit already
        assert canvas.data.version == change.patches[-1].result
        assert shown_ids == [] and written == []  # nothing that reads the database yet
        qtbot.waitUntil(lambda: bool(written), timeout=30000)
        assert shown_ids == [sid] and written[0].patches[-1].result == change.patches[-1].result
        assert _mask_of(ds, sid, ids[1]) != before

        released = _hold_writes_for(ds, 5.0)
        win.undo_stack.undo()
        assert not released.is_set(), "the undo waited for its database write"
        back = next(i for i in canvas.data.fields["ground_truth"] if i.id == ids[1])
        assert np.array_equal(back.full_mask(), old.full_mask())
        qtbot.waitUntil(lambda: len(written) == 2, timeout=30000)
        assert _mask_of(ds, sid, ids[1]) == before and shown_ids == [sid, sid]

        # browsing (a sample read from the database) lands a write in flight first
        win.features.editing.apply(_grown(ds, sid, ids[2]))
        assert edits.session.writing
        win.show_sample(sid)
        assert not edits.session.writing and len(written) == 3
        assert next(i for i in canvas.data.fields["ground_truth"] if i.id == ids[2]).full_mask()[20:60, 30:80].all()
    finally:
        win.close()
