"""The database going away during a long command: it stops soon with one line, and a rerun resumes (#21.8).

The test runs its own mongod (the suite's shared one must survive), kills it with -9 while
``infer`` is writing, starts it again on the same folder and reruns the command.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

N_IMAGES = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mongod:
    def __init__(self, folder: Path):
        import fiftyone.core.service as fos

        self.exe, self.folder, self.port = fos.DatabaseService.find_mongod(), folder, _free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.proc = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.exe, "--dbpath", str(self.folder), "--port", str(self.port),
                                      "--bind_ip", "127.0.0.1", "--nounixsocket",
                                      "--logpath", str(self.folder / "mongod.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import pymongo

        client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=500)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.admin.command("ping")
                break
            except pymongo.errors.ConnectionFailure:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"mongod did not start; see {self.folder / 'mongod.log'}")
        client.close()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)


@pytest.fixture
def own_mongod(tmp_path):
    mongod = Mongod(tmp_path / "own-db")
    mongod.start()
    yield mongod
    mongod.kill()


def _env(mongod: Mongod) -> dict:
    env = dict(os.environ, FIFTYONE_DATABASE_URI=mongod.uri)
    for name in ("FIFTYONE_DATABASE_DIR", "FIFTYONE_PRIVATE_DATABASE_PORT", "MASKREVIEW_DATABASE_PORT_FOLDER"):
        env.pop(name, None)
    return env


def _cli(env, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "maskreview", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _predicted(mongod: Mongod, dataset: str) -> int:
    import pymongo

    client = pymongo.MongoClient(mongod.uri, serverSelectionTimeoutMS=2000)
    try:
        db = client["fiftyone"]
        meta = db.datasets.find_one({"name": dataset})
        if not meta:
            return 0
        return db[meta["sample_collection_name"]].count_documents({"predictions_run": {"$ne": None}})
    finally:
        client.close()


def test_infer_stops_with_one_line_when_mongod_dies_and_a_rerun_resumes(own_mongod, tiny_model, tmp_path):
    from maskreview.core.demo import write_demo_dataset

    coco = write_demo_dataset(tmp_path / "scenes", n=N_IMAGES, seed=3, size=128)
    env = _env(own_mongod)
    imported = _cli(env, "import", str(coco), "--name", "gone")
    assert imported.wait(300) == 0, imported.stderr.read()

    infer = ("infer", "gone", "--model", str(tiny_model), "--device", "cpu")
    run = _cli(env, *infer)
    try:
        deadline = time.monotonic() + 300
        while _predicted(own_mongod, "gone") == 0:  # wait until the run has written something
            assert run.poll() is None, run.stderr.read()
            assert time.monotonic() < deadline, "infer wrote nothing"
            time.sleep(0.2)
        own_mongod.kill()
        killed = time.monotonic()
        out, err = run.communicate(timeout=180)
        stopped_after = time.monotonic() - killed
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 2, err[-3000:]
    ours = [line for line in err.splitlines() if line.startswith("maskreview")]
    assert len(ours) == 1 and "Traceback" not in err, err[-3000:]
    assert ours[0].startswith("maskreview: error: lost FiftyOne's database") and "rerun" in ours[0]
    assert stopped_after < 60, stopped_after  # it took two minutes; about ten seconds now

    own_mongod.start()
    done_before = _predicted(own_mongod, "gone")
    assert 0 < done_before < N_IMAGES
    rerun = _cli(env, *infer)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-3000:]
    assert f"skipped {done_before} already done" in out
    assert _predicted(own_mongod, "gone") == N_IMAGES


def test_lost_database_finds_the_connection_failure_behind_other_errors():
    import pymongo.errors

    from maskreview.core.errors import DatabaseError
    from maskreview.core.store import lost_database

    try:
        try:
            raise pymongo.errors.ServerSelectionTimeoutError("localhost:1: [Errno 111] Connection refused, x")
        finally:
            raise RuntimeError("the cleanup failed too")
    except RuntimeError as exc:
        found = lost_database(exc)
    assert isinstance(found, DatabaseError) and "Connection refused" in str(found)
    assert lost_database(ValueError("not a database problem")) is None


def test_a_database_uri_that_is_no_mongodb_uri_is_named_at_once(monkeypatch):
    from maskreview.core import store
    from maskreview.core.errors import DatabaseError

    monkeypatch.setenv("FIFTYONE_DATABASE_URI", "not-a-mongodb-uri")
    with pytest.raises(DatabaseError, match="not-a-mongodb-uri: not a MongoDB URI"):
        store.connect()


def test_the_uri_shown_in_messages_has_no_password(monkeypatch):
    from maskreview.core import store

    monkeypatch.setenv("FIFTYONE_DATABASE_URI", "mongodb://reviewer:s3cret@db.example:27017/x")
    assert store._where() == "mongodb://db.example:27017/x"
