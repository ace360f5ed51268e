"""The app while its database is unreachable, run by test_replica_set.py in a pytest of its own.

Run as ``pytest tests/helpers_offline_gui.py --noconftest`` with ``FIFTYONE_DATABASE_URI`` on a
mongod that the calling test kills and starts again, and ``OFFLINE_STEPS`` a folder where the
two processes leave each other marker files: ``edited`` (the first edit is written), ``killed``
(mongod is gone), ``queued`` (the app has edited on from the journal; its screenshot is
``offline.png``), ``started`` (mongod is back).
"""

from __future__ import annotations

import os
from pathlib import Path

STEPS = Path(os.environ.get("OFFLINE_STEPS", "."))


def test_the_app_edits_on_from_the_journal_and_writes_when_the_database_is_back(qtbot, tmp_path):
    from maskreview.core import store

    store.configure()
    from maskreview.core.editing.ops import SampleTags
    from maskreview.gui.app import apply_palette  # noqa: F401 (the GUI stack imports after FiftyOne)

    from helpers_gui import open_window

    dataset = store.connect().load_dataset(os.environ["OFFLINE_DATASET"])
    win = open_window(qtbot, tmp_path, dataset)
    qtbot.waitUntil(lambda: win.current_sample_id is not None, timeout=20000)
    sid = win.current_sample_id
    notice = win.features.offline.notice
    assert win.edits.apply(SampleTags((sid,), ("online",))) is not None and not notice.isVisible()
    (STEPS / "edited").touch()

    qtbot.waitUntil(lambda: (STEPS / "killed").exists(), timeout=60000)
    for tag in ("offline-1", "offline-2"):
        assert win.edits.apply(SampleTags((sid,), (tag,))) is not None  # not refused: queued
    assert notice.isVisible() and notice.text().startswith("Database unreachable: 2 edit(s) kept in the journal")
    assert win.canvas.data.tags == ["online", "offline-1", "offline-2"]  # shown from the session's document
    assert win.edits.session.offline
    win.grab().save(str(STEPS / "offline.png"))
    (STEPS / "queued").touch()

    qtbot.waitUntil(lambda: (STEPS / "started").exists(), timeout=60000)
    qtbot.waitUntil(lambda: not notice.isVisible(), timeout=60000)  # the probe found it, the queue is written
    assert not win.edits.session.offline
    assert "Database back: 2 edit(s) from the journal written" in win.statusBar().currentMessage()
    assert store.reader.one(dataset, sid, ["tags"])["tags"] == ["online", "offline-1", "offline-2"]
    win.grab().save(str(STEPS / "back.png"))
