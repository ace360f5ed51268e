"""kill -9 the database (a private mongod) during a burst of edits, restart it, reopen:
every edit the editor acknowledged is there, none reverted to an older value."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

TRIALS = 10

_EDITOR = """
import json, sys
from maskreview.core import store
store.configure(database_uri=sys.argv[1])
fo = store.connect()
from pymongo.errors import PyMongoError
from maskreview.core.errors import DatabaseError
from maskreview.core.editing import ops as ed
from maskreview.core.sources import open_source
from maskreview.core.editing.session import EditSession
source, journal = sys.argv[2], sys.argv[3]
ds = open_source(source, name="durable")
ids = ds.values("id")
first = {sid: dets[0] for sid, dets in zip(ids, ds.values("ground_truth.detections.id"))}
session = EditSession(ds, journal_root=journal)
print("READY", flush=True)
k = 0
for line in sys.stdin:
    if line.strip() == "burst":
        try:
            while True:  # edits one after the other, until the database goes away
                sid = ids[k % len(ids)]
                if k % 2:
                    session.apply(ed.SampleTags((sid,), (f"t{k}",)))
                else:
                    session.apply(ed.Relabel((ed.LabelRef(sid, "ground_truth", first[sid]),), f"v{k}"))
                if session.offline:  # journaled, not acknowledged by the database: it is gone
                    raise DatabaseError("queued")
                print("ACK", sid, k, flush=True)
                k += 1
        except (PyMongoError, DatabaseError) as exc:
            k += 1  # that edit may still be replayed: its number is not used again
            print("DOWN", type(exc).__name__, flush=True)
    else:  # reopen, as the window does once the database is back: replays the journal
        session.close()
        session = EditSession(fo.load_dataset("durable"), journal_root=journal)
        docs = list(ds._sample_collection.find({}, {"tags": 1, "ground_truth.detections.label": 1}))
        print(json.dumps({"replayed": session.replayed["applied"], "conflicts": len(session.replayed["conflicts"]),
                          "tags": {str(d["_id"]): d["tags"] for d in docs},
                          "labels": {str(d["_id"]): d["ground_truth"]["detections"][0]["label"] for d in docs}}),
              flush=True)
"""


class Mongod:
    """A mongod of this test's own, on its own data directory and port, that can be killed."""

    def __init__(self, root: Path):
        import importlib.util

        self.binary = Path(importlib.util.find_spec("fiftyone").origin).parent / "db" / "bin" / "mongod"
        self.root = root
        (root / "data").mkdir(parents=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.uri = f"mongodb://127.0.0.1:{self.port}/?serverSelectionTimeoutMS=3000"
        self.proc = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([str(self.binary), "--dbpath", str(self.root / "data"), "--port", str(self.port),
                                      "--bind_ip", "127.0.0.1", "--unixSocketPrefix", str(self.root)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, "mongod exited at start"
                assert time.time() < deadline, "mongod did not start"
                time.sleep(0.1)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no shutdown, whatever is not on disk is gone
        self.proc.wait()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


def test_acknowledged_edits_survive_kill_9_of_mongod(demo_coco, tmp_path):
    mongod = Mongod(tmp_path / "mongo")
    env = {k: v for k, v in os.environ.items() if k not in ("FIFTYONE_DATABASE_DIR", "FIFTYONE_DATABASE_URI")}
    env["MASKREVIEW_DATA_DIR"] = str(tmp_path / "data")
    editor = subprocess.Popen([sys.executable, "-c", _EDITOR, mongod.uri, str(demo_coco), str(tmp_path / "journal")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    rng = random.Random(21)
    try:
        assert editor.stdout.readline().strip() == "READY"
        tags: dict[str, set[str]] = {}
        labels: dict[str, int] = {}  # the last acknowledged relabel of each sample
        acked = replayed = 0
        for trial in range(TRIALS):
            editor.stdin.write("burst\n")
            editor.stdin.flush()
            line = editor.stdout.readline()
            assert line.startswith("ACK"), line
            killer = threading.Timer(rng.uniform(0.2, 1.0), mongod.kill)
            killer.start()
            while not line.startswith("DOWN"):
                _, sid, k = line.split()
                acked += 1
                if int(k) % 2:
                    tags.setdefault(sid, set()).add(f"t{k}")
                else:
                    labels[sid] = int(k)
                line = editor.stdout.readline()
                assert line, "the editor died"
            killer.join()
            mongod.start()
            editor.stdin.write("reopen\n")
            editor.stdin.flush()
            state = json.loads(editor.stdout.readline())
            replayed += state["replayed"]
            lost = [(sid, t) for sid, have in tags.items() for t in have - set(state["tags"][sid])]
            # a later edit, journaled but not acknowledged when the database died, may be replayed
            reverted = [(sid, k, state["labels"][sid]) for sid, k in labels.items()
                        if int(state["labels"][sid][1:]) < k]
            assert not lost and not reverted, (f"trial {trial}: {len(lost)} acknowledged tags lost, {len(reverted)} "
                                               f"labels reverted, of {acked} acknowledged edits: {lost[:3]} {reverted[:3]}")
            assert state["conflicts"] == 0  # what the journal holds was based on what the database holds
        assert acked > 20 * TRIALS
        print(f"{acked} acknowledged edits in {TRIALS} kills of mongod, {replayed} replayed from the journal")
    finally:
        editor.stdin.close()
        editor.wait(60)
        mongod.stop()
