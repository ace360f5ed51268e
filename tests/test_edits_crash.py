"""kill -9 a real editing process at random moments; every acknowledged edit must survive."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time

from maskreview.core.editing import ops as ed
from maskreview.core.sources import open_source
from maskreview.core.editing.session import EditSession

from helpers_edits import journal_only, same_database_env

_EDITOR = """
import sys
from maskreview.core import store
fo = store.connect()
from maskreview.core.editing import ops as ed
from maskreview.core.editing.session import EditSession
name, root, run = sys.argv[1], sys.argv[2], sys.argv[3]
ds = fo.load_dataset(name)
session = EditSession(ds, journal_root=root)
session.journal.compact_bytes = 4096  # compacts every few edits: kill -9 lands around compactions too
ids = ds.values("id")
print("READY", session.replayed["applied"], flush=True)
i = 0
while True:
    sid = ids[i % len(ids)]
    tag = f"r{run}-{i}"
    if i % 3 == 0:
        ops = [ed.SampleTags((sid,), (tag,))]
    elif i % 3 == 1:
        ops = [ed.AddInstance(sid, "ground_truth", tag, polygons=((10, 10, 40, 10, 40, 40),))]
    else:  # a batch: a tag on the next sample and an instance on this one
        ops = [ed.SampleTags((ids[(i + 1) % len(ids)],), (tag,)),
               ed.AddInstance(sid, "ground_truth", tag, polygons=((60, 60, 90, 60, 90, 95),))]
    session.apply_many(ops)
    for op in ops:
        if isinstance(op, ed.SampleTags):
            print("ACK tag", op.sample_ids[0], tag, flush=True)
        else:
            print("ACK label", op.sample_id, op.label_id, tag, flush=True)
    i += 1
"""


def _run_and_kill(name: str, root, run: int, seconds: float) -> list[list[str]]:
    proc = subprocess.Popen([sys.executable, "-c", _EDITOR, name, str(root), str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=same_database_env())
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("READY"):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ready.wait(600), proc.stderr.read() if proc.poll() is not None else "editor did not start"
    time.sleep(seconds)
    proc.kill()  # SIGKILL
    proc.wait()
    reader.join(10)
    # only whole lines count: the editor printed them after the edit was acknowledged
    return [line.split() for line in lines if line.startswith("ACK") and line.endswith("\n")]


def test_acknowledged_edits_survive_kill_9(fo, demo_coco, tmp_path):
    dataset = open_source(demo_coco, name="crash-test")
    root = tmp_path / "journal"
    rng = random.Random(1234)
    acked: list[list[str]] = []
    for run in range(5):
        acks = _run_and_kill(dataset.name, root, run, rng.uniform(0.3, 2.5))
        assert acks, f"run {run} acknowledged nothing"
        acked += acks
        with EditSession(dataset, journal_root=root):  # reopening replays what the dead one journaled
            pass
        dataset.reload()
        tags = dict(zip(*dataset.values(["id", "tags"])))
        labels = {}
        for sid, dets in zip(*dataset.values(["id", "ground_truth"])):
            labels.update({(sid, d.id): d.label for d in dets.detections})
        for ack in acked:
            if ack[1] == "tag":
                assert ack[3] in tags[ack[2]], f"acknowledged tag {ack[3]} lost"
            else:
                assert labels.get((ack[2], ack[3])) == ack[4], f"acknowledged instance {ack[4]} lost"
    # the journal is empty once everything is replayed and no session is open
    assert not list((root / str(dataset._doc.id)).glob("*.jsonl"))


def test_replayed_instance_is_exactly_what_was_journaled(fo, demo_coco, tmp_path):
    dataset = open_source(demo_coco, name="crash-exact")
    sample = dataset.first()
    root = tmp_path / "j"
    dead = EditSession(dataset, journal_root=root)
    op = ed.AddInstance(sample.id, "ground_truth", "ghost", polygons=((5, 5, 30, 8, 12, 40),))
    journal_only(dead, op)
    os.close(dead.journal._fd)  # dies between the journal and the database
    with EditSession(dataset, journal_root=root) as alive:
        assert alive.replayed["applied"] == 1
    det = {d.id: d for d in dataset[sample.id].ground_truth.detections}[op.label_id]
    from maskreview.core import masks as mk

    h, w = sample.metadata.height, sample.metadata.width
    expected = mk.coco_to_bitmap([[5, 5, 30, 8, 12, 40]], h, w)
    assert (mk.detection_to_bitmap(det, h, w) == expected).all() and det.label == "ghost"


def test_compaction_drops_confirmed_entries_and_keeps_unconfirmed_ones(fo, demo_coco, tmp_path):
    dataset = open_source(demo_coco, name="crash-compact")
    root = tmp_path / "j"
    ids = dataset.values("id")
    session = EditSession(dataset, journal_root=root)
    journal = session.journal
    journal.compact_bytes = 1 << 40  # by hand below
    added = [session.apply(ed.AddInstance(sid, "ground_truth", f"kept{i}", polygons=((5, 5, 60, 9, 20, 70),)))
             for i, sid in enumerate(ids)]
    grown = journal.size()
    lost = dataset[ids[0]].ground_truth.detections[0]
    journal_only(session, ed.Relabel((ed.LabelRef(ids[0], "ground_truth", lost.id),), "unconfirmed"))
    with_pending = journal.size()
    journal.compact()
    lines = journal.path.read_text().splitlines()
    assert len(lines) == 1 and '"seq": %d' % journal.seq in lines[0]  # only the unconfirmed entry
    assert journal.size() == len(lines[0]) + 1 < with_pending / 4
    os.close(journal._fd)  # the process dies with the unconfirmed entry in the compacted journal
    with EditSession(dataset, journal_root=root) as alive:
        assert alive.replayed["applied"] == 1 and not alive.replayed["conflicts"]
    labels = {d.id: d.label for sid in ids for d in dataset[sid].ground_truth.detections}
    assert labels[lost.id] == "unconfirmed"
    assert all(labels[c.label_ids[0]] == f"kept{i}" for i, c in enumerate(added))
    assert not list(journal.dir.glob("*.jsonl*"))


def test_journal_stays_small_and_close_keeps_only_pending(fo, demo_coco, tmp_path):
    dataset = open_source(demo_coco, name="crash-compact-auto")
    root = tmp_path / "j"
    ids = dataset.values("id")
    session = EditSession(dataset, journal_root=root)
    session.journal.compact_bytes = 2048
    sizes = []
    for i in range(3 * len(ids)):
        session.apply(ed.SampleTags((ids[i % len(ids)],), (f"t{i}",)))
        sizes.append(session.journal.size())
    assert max(sizes) < 2048 + 1024 < len(sizes) * sizes[0]  # without compaction it would pass 8 kB
    assert any(b < a for a, b in zip(sizes, sizes[1:]))
    journal_only(session, ed.SampleTags((ids[0],), ("after-close",)))
    path = session.journal.path
    session.close()  # a clean close with one entry the database never confirmed: kept, alone
    assert [line.count('"seq"') for line in path.read_text().splitlines()] == [1]
    with EditSession(dataset, journal_root=root) as alive:
        assert alive.replayed["applied"] == 1
    assert "after-close" in dataset[ids[0]].tags and not path.exists()
