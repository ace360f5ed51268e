"""The database going away during a long command: it stops soon with one line, and a rerun resumes (#21.8).

The test runs its own mongod (the suite's shared one must survive): one that FiftyOne's service
starts on a folder of the test's, or one given by URI. It kills it with -9 while ``infer`` is
writing, then reruns the command (on the URI, after starting mongod again on the same folder).
"""

from __future__ import annotations

import os
import re
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


def _env(mongod: Mongod) -> dict:
    env = dict(os.environ, FIFTYONE_DATABASE_URI=mongod.uri)
    for name in ("FIFTYONE_DATABASE_DIR", "FIFTYONE_PRIVATE_DATABASE_PORT", "MASKREVIEW_DATABASE_PORT_FOLDER"):
        env.pop(name, None)
    return env


def _cli(env, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "maskreview", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _predicted(uri: str, dataset: str) -> int:
    import pymongo

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)
    try:
        db = client["fiftyone"]
        meta = db.datasets.find_one({"name": dataset})
        if not meta:
            return 0
        return db[meta["sample_collection_name"]].count_documents({"predictions_run": {"$ne": None}})
    finally:
        client.close()


def _flush_to_disk(uri: str) -> None:
    import pymongo

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)
    try:
        client.admin.command("fsync")
    finally:
        client.close()


def _service_mongod(run) -> tuple[int, str] | None:
    """The pid and URI of the mongod that FiftyOne's service started for the process ``run``."""
    import psutil

    try:
        for child in psutil.Process(run.pid).children(recursive=True):
            if child.name() == "mongod":
                ports = [c.laddr.port for c in child.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
                if ports:
                    return child.pid, f"mongodb://127.0.0.1:{ports[0]}"
    except psutil.Error:
        pass
    return None


@pytest.mark.parametrize("database", ["own service", "uri"])
def test_infer_stops_with_one_line_when_mongod_dies_and_a_rerun_resumes(database, tiny_model, tmp_path):
    """``own service``: FiftyOne starts mongod on a folder (the default); ``uri``: --database-uri."""
    from maskreview.core.demo import write_demo_dataset

    coco = write_demo_dataset(tmp_path / "scenes", n=N_IMAGES, seed=3, size=128)
    mongod = Mongod(tmp_path / "uri-db") if database == "uri" else None
    if mongod:
        mongod.start()
        env = _env(mongod)
    else:
        env = dict(os.environ, FIFTYONE_DATABASE_DIR=str(tmp_path / "service-db"))
        for name in ("FIFTYONE_DATABASE_URI", "FIFTYONE_PRIVATE_DATABASE_PORT", "MASKREVIEW_DATABASE_PORT_FOLDER"):
            env.pop(name, None)
    try:
        imported = _cli(env, "import", str(coco), "--name", "gone")
        assert imported.wait(300) == 0, imported.stderr.read()
        infer = ("infer", "gone", "--model", str(tiny_model), "--device", "cpu")
        run = _cli(env, *infer)
        try:
            deadline = time.monotonic() + 300
            while True:  # wait until the run has written something
                assert run.poll() is None, run.stderr.read()
                assert time.monotonic() < deadline, "infer wrote nothing"
                found = (mongod.proc.pid, mongod.uri) if mongod else _service_mongod(run)
                if found and _predicted(found[1], "gone") > 0:
                    break
                time.sleep(0.2)
            _flush_to_disk(found[1])  # what is to survive the kill (durability is test_edits_durable's)
            os.kill(found[0], signal.SIGKILL)
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
        assert "Subprocess" not in err and '"msg"' not in out + err  # nothing of the service's or mongod's
        assert stopped_after < 60, stopped_after  # it took two minutes; about ten seconds now

        if mongod:
            mongod.start()
        rerun = _cli(env, *infer)
        out, err = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, err[-3000:]
        predicted, skipped = map(int, re.search(r"predicted (\d+) samples.*skipped (\d+) already done", out).groups())
        assert 0 < skipped < N_IMAGES and predicted + skipped == N_IMAGES, out
    finally:
        if mongod:
            mongod.kill()


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
