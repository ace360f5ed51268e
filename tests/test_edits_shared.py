"""Two maskreview processes on one standalone mongod: concurrent edits are detected, never lost."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest



def _mongod_binary() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("fiftyone")
    return Path(spec.origin).parent / "db" / "bin" / "mongod"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mongod(tmp_path):
    binary = _mongod_binary()
    dbpath = tmp_path / "mongo"
    dbpath.mkdir()
    port = _free_port()
    proc = subprocess.Popen([str(binary), "--dbpath", str(dbpath), "--port", str(port), "--bind_ip", "127.0.0.1",
                             "--unixSocketPrefix", str(tmp_path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, "mongod exited at start"
            time.sleep(0.2)
    yield f"mongodb://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(dbpath, ignore_errors=True)


_WORKER = """
import json, sys
from maskreview.core import store
store.configure(database_uri=sys.argv[1])
fo = store.connect()
from maskreview.core.editing import ops as ed
from maskreview.core.sources import open_source
from maskreview.core.editing.session import ConflictError, EditSession
session = None
for line in sys.stdin:
    cmd = json.loads(line)
    try:
        if cmd["do"] == "import":
            ds = open_source(cmd["source"], name="shared")
            s = ds.first()
            out = {"sid": s.id, "lid": s.ground_truth.detections[0].id}
        elif cmd["do"] == "open":
            ds = fo.load_dataset("shared")
            session = EditSession(ds, journal_root=cmd["journal"])
            session.track(cmd["sid"])
            out = {}
        elif cmd["do"] == "relabel":
            ref = ed.LabelRef(cmd["sid"], "ground_truth", cmd["lid"])
            session.apply(ed.Relabel((ref,), cmd["label"]), force=cmd.get("force", False))
            out = {}
        elif cmd["do"] == "tag":
            session.apply(ed.SampleTags((cmd["sid"],), (cmd["tag"],)))
            out = {}
        elif cmd["do"] == "refresh":
            session.refresh(cmd["sid"])
            out = {}
        elif cmd["do"] == "read":
            doc = ds._sample_collection.find_one({"_id": ds[cmd["sid"]]._id})
            out = {"label": doc["ground_truth"]["detections"][0]["label"], "tags": doc["tags"]}
    except ConflictError as exc:
        out = {"conflict": exc.sample_ids}
    print(json.dumps(out), flush=True)
"""


class Worker:
    def __init__(self, uri: str, data_dir: Path):
        env = {k: v for k, v in os.environ.items() if k not in ("FIFTYONE_DATABASE_DIR", "FIFTYONE_DATABASE_URI")}
        env["MASKREVIEW_DATA_DIR"] = str(data_dir)
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER, uri], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)

    def __call__(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"worker died on {cmd}"
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(60)


def test_two_processes_on_one_database(mongod, demo_coco, tmp_path):
    a, b = Worker(mongod, tmp_path / "a"), Worker(mongod, tmp_path / "b")
    try:
        ids = a(do="import", source=str(demo_coco))
        sid, lid = ids["sid"], ids["lid"]
        a(do="open", journal=str(tmp_path / "ja"), **ids)
        b(do="open", journal=str(tmp_path / "jb"), **ids)

        assert b(do="relabel", label="theirs", **ids) == {}
        # A loaded the sample before B's edit: its edit is refused, B's stays
        assert a(do="relabel", label="mine", **ids) == {"conflict": [sid]}
        assert a(do="read", sid=sid)["label"] == "theirs"
        assert a(do="tag", sid=sid, tag="fp") == {"conflict": [sid]}  # any change to a stale sample

        a(do="refresh", sid=sid)  # take theirs, then edit again
        assert a(do="relabel", label="mine-after-refresh", **ids) == {}
        assert b(do="read", sid=sid)["label"] == "mine-after-refresh"

        assert b(do="relabel", label="b-again", **ids) == {"conflict": [sid]}
        assert b(do="relabel", label="b-kept", force=True, **ids) == {}  # keep mine
        assert a(do="read", sid=sid)["label"] == "b-kept"
        assert lid
    finally:
        a.close()
        b.close()
