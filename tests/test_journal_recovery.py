"""Damaged journals: every valid entry is replayed, each damaged line is reported with its
position and kept in a quarantine file beside the journal, and editing goes on."""

from __future__ import annotations

import base64
import json
import os
import random
import re

import bson
import pytest

from maskreview.core.editing import ops as ed
from maskreview.core.editing import changes as ch
from maskreview.core.sources import open_source
from maskreview.core.editing.session import EditSession, replay_message

from helpers_edits import journal_only

ENTRIES = 6


def _dead_session(ds, root) -> tuple:
    """A session that journaled a tag on each of ENTRIES samples and died before writing them."""
    dead = EditSession(ds, journal_root=root)
    ids = ds.values("id")[:ENTRIES]
    for i, sid in enumerate(ids):
        journal_only(dead, ed.SampleTags((sid,), (f"j{i}",)))
    os.close(dead.journal._fd)
    return dead.journal.path, [(sid, f"j{i}") for i, sid in enumerate(ids)]


def _replace_bson(line: bytes, data: bytes) -> bytes:
    return re.sub(rb'"bson": "[^"]*"', b'"bson": "' + data + b'"', line)


def _altered(line: bytes) -> bytes:
    """The same entry with another tag: valid base64 and BSON; only the checksum can tell."""
    doc = bson.decode(base64.b64decode(re.search(rb'"bson": "([^"]*)"', line).group(1)))
    doc["patches"][0]["tags_add"] = ["k2"]
    return _replace_bson(line, base64.b64encode(bson.encode(doc)))


_RNG = random.Random(2105)
DAMAGE = {  # line 3 (index 2) damaged in place
    "random bytes": lambda line: _RNG.randbytes(len(line)).replace(b"\n", b"x"),
    "bad base64": lambda line: line.replace(b'"bson": "', b'"bson": "!!@@', 1),
    "bad BSON": lambda line: _replace_bson(line, base64.b64encode(_RNG.randbytes(120))),
    "altered": _altered,
}


@pytest.mark.parametrize("checksummed", [True, False], ids=["checksummed", "without-checksums"])
@pytest.mark.parametrize("kind", [*DAMAGE, "zeros over the middle"])
def test_damaged_journal_is_replayed_but_for_its_damaged_lines(fo, demo_coco, tmp_path, kind, checksummed):
    if kind == "altered" and not checksummed:
        pytest.skip("an altered line that still decodes is caught by its checksum alone")
    ds = open_source(demo_coco, name="damaged-journal")
    root = tmp_path / "j"
    path, tags = _dead_session(ds, root)
    lines = path.read_bytes().split(b"\n")[:-1]
    assert len(lines) == ENTRIES and all(b'"crc": "' in line for line in lines)
    if not checksummed:  # as journals were written before checksums
        lines = [re.sub(rb', "crc": "[0-9a-f]{8}"', b"", line) for line in lines]
    starts = [sum(len(line) + 1 for line in lines[:i]) for i in range(ENTRIES)]
    if kind == "zeros over the middle":  # from the middle of line 2 to the middle of line 4
        data = bytearray(b"\n".join(lines) + b"\n")
        zero_from, zero_to = starts[1] + len(lines[1]) // 2, starts[3] + len(lines[3]) // 2
        data[zero_from:zero_to] = bytes(zero_to - zero_from)
        lost = {1, 2, 3}
        damaged = [(2, starts[1], bytes(data[starts[1] : starts[4] - 1]))]  # lines 2-4 run together
    else:
        lines[2] = DAMAGE[kind](lines[2])
        data = b"\n".join(lines) + b"\n"
        lost = {2}
        damaged = [(3, starts[2], lines[2])]
    path.write_bytes(data)

    with EditSession(ds, journal_root=root) as session:  # today: a traceback, no editing at all
        report = session.replayed
        assert report["applied"] == ENTRIES - len(lost) and not report["conflicts"]
        assert [(d.line, d.offset, d.data) for d in report["damaged"]] == damaged
        quarantine = path.with_name(path.stem + ".quarantined")
        assert report["quarantined"] == [quarantine]
        kept = [json.loads(line) for line in quarantine.read_text().splitlines()]
        assert [(k["journal"], k["line"], k["offset"], base64.b64decode(k["bytes"])) for k in kept] == [
            (path.name, *d) for d in damaged]
        message = replay_message(report)
        assert f"recovered {ENTRIES - len(lost)} edit" in message.lower() and "1 damaged journal line" in message
        assert f"line {damaged[0][0]} " in message and str(quarantine) in message
        assert not path.exists()  # replayed; only the damaged lines are kept

        have = dict(zip(*ds.values(["id", "tags"])))
        assert [tag in have[sid] for sid, tag in tags] == [i not in lost for i in range(ENTRIES)]
        assert not any("k2" in t for t in have.values())
        sid = tags[0][0]
        session.apply(ed.SampleTags((sid,), ("after-recovery",)))  # editing goes on
    assert "after-recovery" in ds[sid].tags
    with EditSession(ds, journal_root=root) as again:
        assert not again.replayed["damaged"] and replay_message(again.replayed) is None


def test_damaged_applied_marker_replays_its_entry_once(fo, demo_coco, tmp_path):
    ds = open_source(demo_coco, name="damaged-marker")
    root = tmp_path / "j"
    sid = ds.first().id
    dead = EditSession(ds, journal_root=root)
    dead.apply(ed.SampleTags((sid,), ("written",)))
    os.close(dead.journal._fd)
    entry, marker = dead.journal.path.read_bytes().split(b"\n")[:2]
    assert b'"applied": [1]' in marker
    dead.journal.path.write_bytes(entry + b"\n" + marker.replace(b"[1]", b"[7]") + b"\n")
    with EditSession(ds, journal_root=root) as session:
        assert (session.replayed["applied"], session.replayed["already"]) == (0, 1)  # found in the database
        assert [(d.line, d.reason) for d in session.replayed["damaged"]] == [(2, "checksum mismatch")]
    assert ds[sid].tags.count("written") == 1


def test_line_cut_short_at_the_end_is_kept_and_the_rest_replayed(fo, demo_coco, tmp_path):
    ds = open_source(demo_coco, name="cut-journal")
    root = tmp_path / "j"
    path, tags = _dead_session(ds, root)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the session died writing its last entry
    with EditSession(ds, journal_root=root) as session:
        assert session.replayed["applied"] == ENTRIES - 1
        assert [(d.line, d.reason) for d in session.replayed["damaged"]] == [(ENTRIES, "cut short at the end")]
    have = dict(zip(*ds.values(["id", "tags"])))
    assert [tag in have[sid] for sid, tag in tags] == [True] * (ENTRIES - 1) + [False]


def test_window_says_what_was_recovered_and_edits_go_on(qtbot, fo, demo_coco, tmp_path):
    from helpers_gui import open_window

    ds = open_source(demo_coco, name="damaged-journal-gui")
    path, tags = _dead_session(ds, None)  # the journal the window's session replays
    lines = path.read_bytes().split(b"\n")
    lines[2] = b"\x00" * len(lines[2])
    path.write_bytes(b"\n".join(lines))
    window = open_window(qtbot, tmp_path, ds)
    assert window.edits is not None
    text = window._message.text()
    assert f"Recovered {ENTRIES - 1} edit" in text and "1 damaged journal line" in text and "line 3 " in text
    sid = tags[0][0]
    window.edits.apply(ed.SampleTags((sid,), ("after-recovery",)))
    assert "after-recovery" in ds[sid].tags and tags[1][1] in ds[tags[1][0]].tags


def test_both_line_forms_carry_a_checksum_that_reading_checks(tmp_path):
    import numpy as np

    from maskreview.core.editing import journal as jn

    as_bson = ch.SamplePatch("s1", [], ["t"], [], ch.Version(), ch.Version(1, "w", None))
    as_json = ch.SamplePatch("s2", [ch.LabelPatch("gt", "l2", None, {"score": np.float32(0.5)}, 2)], [], [],
                             ch.Version(), ch.Version(1, "w", None))  # a value BSON cannot hold
    lines = [jn.entry_line(1, [as_bson]), jn.entry_line(2, [as_json])]
    assert '"bson"' in lines[0] and '"patches"' in lines[1]
    lines += [line.replace('"seq": ', '"seq": 1') for line in lines]  # seq 11 and 12: the text no longer matches
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "1-1.jsonl").write_text("\n".join(lines) + "\n")
    (orphan,) = jn.orphans("ds", tmp_path)
    assert [seq for seq, _ in orphan.entries] == [1, 2]
    assert [(d.line, d.reason) for d in orphan.damaged] == [(3, "checksum mismatch"), (4, "checksum mismatch")]
    orphan.release(delete=False)


def test_journal_from_before_revisions_and_checksums_is_replayed(fo, demo_coco, tmp_path):
    """Lines as maskreview wrote them before: no checksum, patches based on last_modified_at alone."""
    from datetime import timedelta

    ds = open_source(demo_coco, name="old-journal")
    first, second = ds.values("id")[:2]
    modified = dict(zip(*ds.values(["id", "last_modified_at"])))
    stamp = max(modified.values()).replace(microsecond=0) + timedelta(seconds=1)

    def line(seq, sid, tag):
        patch = {"sample_id": sid, "tags_add": [tag], "tags_remove": [], "expect": modified[sid], "stamp": stamp,
                 "labels": []}
        return '{"seq": %d, "bson": "%s"}' % (seq, base64.b64encode(bson.encode({"patches": [patch]})).decode())

    folder = tmp_path / "j" / str(ds._doc.id)
    folder.mkdir(parents=True)
    (folder / "1-1.jsonl").write_text(line(1, first, "old-1") + "\n" + line(2, second, "old-2") + "\n")
    ds._sample_collection.update_one({"_id": ds[second]._id}, {"$set": {"tags": ["old-2"], "last_modified_at": stamp}})
    with EditSession(ds, journal_root=tmp_path / "j") as session:  # the second had reached the database
        assert (session.replayed["applied"], session.replayed["already"]) == (1, 1)
        assert not session.replayed["damaged"] and not session.replayed["conflicts"]
        session.apply(ed.SampleTags((first,), ("new",)))
    assert ds[first].tags == ["old-1", "new"] and ds[second].tags == ["old-2"]
