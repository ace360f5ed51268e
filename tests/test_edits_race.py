"""Two reviewers' processes tag one sample as fast as they can, retrying on conflict:
every edit either process was told succeeded is in the database afterwards."""

from __future__ import annotations

import subprocess
import sys

from maskreview.core.sources import open_source

from helpers_edits import same_database_env

EDITS = 1500  # per process

_WRITER = """
import sys
from maskreview.core import store
fo = store.connect()
from maskreview.core.editing import ops as ed
from maskreview.core.editing.session import ConflictError, EditSession
name, sid, root, who, n = sys.argv[1:6]
session = EditSession(fo.load_dataset(name), journal_root=root)
session.track(sid)
conflicts = 0
print("READY", flush=True)
sys.stdin.readline()  # both start together
for i in range(int(n)):
    tag = f"{who}-{i}"
    while True:
        try:
            session.apply(ed.SampleTags((sid,), (tag,)))
            break
        except ConflictError:
            conflicts += 1
            session.refresh(sid)  # take theirs, then tag again
    print("ACK", tag, flush=True)
session.close()
print("CONFLICTS", conflicts, flush=True)
"""


def test_two_writers_on_one_sample_lose_no_acknowledged_edit(fo, demo_coco, tmp_path):
    dataset = open_source(demo_coco, name="race")
    sid = dataset.first().id
    before = set(dataset.first().tags)
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, dataset.name, sid, str(tmp_path / who), who, str(EDITS)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=same_database_env())
               for who in ("a", "b")]
    for w in writers:
        assert w.stdout.readline().strip() == "READY"
    for w in writers:
        w.stdin.write("go\n")
        w.stdin.flush()
    outputs = [w.communicate(timeout=1200)[0].splitlines() for w in writers]
    assert [w.returncode for w in writers] == [0, 0]
    acked = [line.split()[1] for out in outputs for line in out if line.startswith("ACK ")]
    conflicts = sum(int(line.split()[1]) for out in outputs for line in out if line.startswith("CONFLICTS "))
    assert len(acked) == 2 * EDITS
    assert conflicts > 0  # the writers did race

    tags = dataset._sample_collection.find_one({"_id": dataset.first()._id})["tags"]
    lost = sorted(set(acked) - set(tags))
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged edits lost ({conflicts} conflicts retried): {lost[:5]}"
    assert len(tags) == len(set(tags)) == len(before) + 2 * EDITS
