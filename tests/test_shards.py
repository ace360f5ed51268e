"""``maskreview infer --shard I/N``: N workers, started anywhere, cover every sample once with a single run's labels (#19.1).

Shards go by a hash of the sample id. Two workers run at once against the same database; one of
them is killed with -9 after its first write and started again. Every sample then holds exactly
one model write (``review_rev`` 1: a rewrite would make it 2) and the same labels (class, box,
score, mask bytes) as a single-process run over a copy of the dataset.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from bson import ObjectId

from conftest import REPO

N_IMAGES = 48


def _cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "maskreview", *args], cwd=REPO, env=os.environ.copy(),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen, timeout: int = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def labels_by_path(dataset, field: str) -> dict[str, list[dict]]:
    """Each sample's labels in ``field`` as stored, without their ids (new for every run)."""
    docs = dataset._sample_collection.find({}, {"filepath": 1, field: 1})
    return {d["filepath"]: [{k: v for k, v in det.items() if k != "_id"} for det in (d.get(field) or {}).get(
        "detections", [])] for d in docs}


def revisions(dataset) -> list[int]:
    return [d.get("review_rev") for d in dataset._sample_collection.find({}, {"review_rev": 1})]


def test_shard_of_is_a_stable_partition_by_id():
    from maskreview.core.model.sharding import Shard, select, shard_of, within

    ids = [str(ObjectId()) for _ in range(600)]
    for n in (1, 2, 3, 7):
        shards = [select(ids, Shard(i, n)) for i in range(n)]
        assert all(sum(col) == 1 for col in zip(*shards))  # each id in exactly one shard
        assert all(any(s) for s in shards) or n > len(ids)
    # the same in another process (no per-process hash seed)
    code = f"from maskreview.core.model.sharding import shard_of; print([shard_of(i, 5) for i in {ids[:50]!r}])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert other.stdout.strip() == str([shard_of(i, 5) for i in ids[:50]])
    # the ranks of a distributed run split one shard among them, exactly
    for rank in range(3):
        sub = within(Shard(1, 4), rank, 3)
        assert all(not sub.holds(i) or Shard(1, 4).holds(i) for i in ids)
    assert [sum(within(Shard(1, 4), r, 3).holds(i) for r in range(3)) for i in ids] == \
        [int(Shard(1, 4).holds(i)) for i in ids]


def test_two_shard_workers_one_killed_and_restarted_cover_every_sample_once_as_a_single_run(fo, tmp_path):
    from maskreview.core.demo import write_demo_dataset
    from maskreview.core.model.provenance import provenance
    from maskreview.core.model.sharding import Shard
    from maskreview.core.sources import open_source

    coco = write_demo_dataset(tmp_path / "scenes", n=N_IMAGES, seed=11, size=128)
    dataset = open_source(str(coco), name="sharded")
    single = dataset.clone("single")
    infer = ("--model", "demo", "--device", "cpu", "--threads", "1")  # labels to the bit: one thread count for all
    reference = _cli("infer", "single", *infer)

    first = _cli("infer", "sharded", *infer, "--shard", "0/2")
    shard0 = [i for i in dataset.values("id") if Shard(0, 2).holds(i)]
    deadline = time.monotonic() + 300
    while not dataset._sample_collection.count_documents({"predictions_run": {"$ne": None}}):
        assert first.poll() is None, first.stderr.read()
        assert time.monotonic() < deadline, "shard 0 wrote nothing"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(60)
    written_before_kill = dataset._sample_collection.count_documents({"predictions_run": {"$ne": None}})
    assert 0 < written_before_kill < len(shard0), "the worker finished before it could be killed"

    workers = [_cli("infer", "sharded", *infer, "--shard", "0/2"), _cli("infer", "sharded", *infer, "--shard", "1/2")]
    restarted, other = (_finish(w) for w in workers)
    _finish(reference)
    skipped = int(re.search(r"skipped (\d+) already done", restarted)[1])
    assert skipped == written_before_kill, restarted  # it went on where it stopped
    assert "shard 1/2: predicted" in other

    dataset.reload()
    single.reload()
    assert revisions(dataset) == [1] * N_IMAGES  # every sample written once: no gap, no overlap
    ours, theirs = labels_by_path(dataset, "predictions"), labels_by_path(single, "predictions")
    assert sum(map(len, theirs.values())) > N_IMAGES  # the demo model finds shapes: a real comparison
    assert ours == theirs
    schema = dataset.get_field_schema()
    assert {"predictions", "predictions_run", "review_rev", "review_rev_by"} <= set(schema)  # no write lost another's
    record = provenance(dataset, "predictions")
    assert set(record["shards"]) == {"0of2", "1of2"} and record["predicted"] == N_IMAGES - skipped
    assert record["shards"]["1of2"]["predicted"] == N_IMAGES - len(shard0)
