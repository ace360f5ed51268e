"""A model run's batches land without a database round trip on the GUI thread (issue 17, the stall
row): the versions the edit session needs for the written samples are read on the run's own
thread, and the session still holds the stored version of each (an edit right after is no conflict)."""

from __future__ import annotations

import threading

import pytest
from helpers_gui import demo_window, settle


@pytest.fixture
def window(qtbot, fo, demo_coco, tmp_path):
    with demo_window(qtbot, tmp_path, demo_coco) as win:
        yield win


def test_a_runs_written_batches_read_no_versions_on_the_gui_thread(window, qtbot, monkeypatch):
    from maskreview.core.editing import session as session_module
    from maskreview.core.editing.session import VERSION_FIELDS, version_of
    from maskreview.core.store import reader

    win = window
    gui = threading.current_thread()
    reads = []
    by_ids = reader.by_ids

    def counted(dataset, ids, fields=None, *args, **kwargs):  # the real read, noted with its thread
        if fields == VERSION_FIELDS:
            reads.append((threading.current_thread() is gui, win.inference is not None))
        return by_ids(dataset, ids, fields, *args, **kwargs)

    monkeypatch.setattr(session_module.reader, "by_ids", counted)
    win.model_runs.choose("demo")
    written = []
    job = win.run_inference("dataset")
    job.progress.emitter.written.connect(written.extend)
    qtbot.waitUntil(lambda: win.inference is None and not job.isRunning(), timeout=180_000)
    settle(qtbot)
    assert written and reads
    assert (True, True) not in reads, reads  # none on the GUI thread while the model ran
    stored = by_ids(win.dataset, written, VERSION_FIELDS)
    versions = win.edits.session.versions
    assert {sid: versions[sid] for sid in written} == {sid: version_of(doc) for sid, doc in stored.items()}
