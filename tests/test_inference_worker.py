"""The model worker process (core/model/worker.py): real child processes, real kills.

- a run through the worker writes like ``run_inference`` in-process (provenance, resumable) and
  relays progress, written batches and the field's snapshots;
- a dropped image comes back as plain data; the window's reader refuses anything else;
- ``kill -9`` mid-run: the pending call fails naming the signal, a fresh worker is started, what
  was written stays, a rerun predicts only the rest.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from maskreview.core.model.engine import EngineSettings
from maskreview.core.model.worker_client import WorkerClient, WorkerCrashed
from maskreview.core.progress import Progress

SETTINGS = EngineSettings(device="cpu", max_detections=12)


@pytest.fixture
def client():
    c = WorkerClient()
    yield c
    c.close()


@pytest.fixture
def dataset(fo, tmp_path):
    from maskreview.core.demo import write_demo_dataset
    from maskreview.core.sources import open_source

    return open_source(write_demo_dataset(tmp_path / "demo", n=24, seed=3))


def _run(client, dataset, progress=None, on_event=None, **kwargs):
    args = dict(dataset=dataset.name, ids=None, model="demo", weights=None, settings=SETTINGS, field=None,
                overwrite=False, only_missing=False, trust_checkpoint=False)
    return client.call("run", progress, on_event, **{**args, **kwargs})


def test_a_run_in_the_worker_writes_records_and_resumes(client, dataset):
    from maskreview.core.model.provenance import provenance

    events, progress = [], Progress()
    ids = dataset.values("id")[:5]
    result = _run(client, dataset, progress, events.append, ids=ids)
    assert result["status"] == "done" and result["field"] == "predictions" and result["count"] == 5
    assert result["report"].predicted == 5 and not result["report"].failures
    kinds = [e["event"] for e in events]
    assert kinds[0] == "target" and "written" in kinds and kinds[-1] == "snapshots"
    written = {i for e in events if e["event"] == "written" for i in e["ids"]}
    assert written == set(ids)
    snaps = events[-1]
    assert not snaps["before"].existed and snaps["after"].existed and set(snaps["after"].values) == set(ids)
    assert progress.total == 5 and progress.done == 5  # relayed from the worker
    dataset.reload()
    assert provenance(dataset, "predictions")["model"] == "demo"
    assert dataset.count("predictions") == 5
    # the model stays loaded; a rerun of the same model predicts only what is missing
    pid = client.pid
    result = _run(client, dataset, only_missing=True)
    assert result["report"].predicted == 19 and result["report"].skipped == 0 and client.pid == pid
    assert _run(client, dataset, only_missing=True)["status"] == "current"


def test_cancel_reaches_the_worker(client, dataset):
    from maskreview.core.errors import CancelledError

    progress = Progress()

    def cancel_at_first_write(event):
        if event["event"] == "written":
            progress.cancel()

    with pytest.raises(CancelledError):
        _run(client, dataset, progress, cancel_at_first_write)
    dataset.reload()
    done = dataset.count("predictions")
    assert 0 < done < len(dataset)  # what was written before the cancel stays
    assert client.call("ping") == client.pid  # the worker lives on


def test_a_dropped_image_comes_back_as_plain_data(client, dataset):
    found = client.call("predict_image", path=dataset.first().filepath, model="demo", weights=None,
                        settings=SETTINGS)
    assert found and all(type(d["mask"]) is np.ndarray and d["mask"].dtype == bool for d in found)
    assert all(isinstance(d["label"], str) and len(d["bounding_box"]) == 4 for d in found)


def test_the_reader_refuses_what_is_not_plain_data():
    from maskreview.core.model import worker_io

    assert worker_io.decode(pickle.dumps({"a": np.arange(3)}))["a"].tolist() == [0, 1, 2]
    with pytest.raises(pickle.UnpicklingError, match="not plain data"):
        worker_io.decode(pickle.dumps(subprocess.Popen))
    with pytest.raises(pickle.UnpicklingError, match="not plain data"):
        worker_io.decode(pickle.dumps(os.system))


def test_kill_9_mid_run_fails_the_call_restarts_and_the_rerun_resumes(client, dataset):
    crashes, progress = [], Progress()
    client.on_crash.append(crashes.append)
    killed = []

    def kill_at_first_write(event):
        if event["event"] == "written" and not killed:
            killed.append(client.pid)
            os.kill(client.pid, signal.SIGKILL)

    with pytest.raises(WorkerCrashed) as caught:
        _run(client, dataset, progress, kill_at_first_write)
    assert "SIGKILL" in str(caught.value) and crashes and crashes[0].how == caught.value.how
    assert client.running and client.pid != killed[0]  # restarted at once
    assert client.call("ping") == client.pid
    dataset.reload()
    written = dataset.count("predictions_run")
    assert 0 < written < len(dataset)
    result = _run(client, dataset, only_missing=True)
    assert result["report"].predicted == len(dataset) - written  # resumed, nothing predicted twice


def test_a_segfault_fails_the_pending_call_by_name_and_restarts(client):
    crashes = []
    client.on_crash.append(crashes.append)
    client.start()
    crashed = client.pid
    call = client.submit("preload")  # imports torch and detectron2: pending for a while
    os.kill(crashed, signal.SIGSEGV)
    assert call.done.wait(60)
    assert isinstance(call.error, WorkerCrashed) and "segmentation fault" in str(call.error), call.error
    assert crashes and "SIGSEGV" in crashes[0].how
    assert client.call("ping") == client.pid != crashed  # a fresh worker answers


def test_the_client_never_imports_torch(dataset):
    """A process that only talks to the worker (as the window does) has no torch after a run."""
    code = (
        "import sys, json\n"
        "from maskreview.core import store; store.configure(); fo = store.fiftyone()\n"
        "from maskreview.core.model.engine import EngineSettings\n"
        "from maskreview.core.model.worker_client import WorkerClient\n"
        "c = WorkerClient()\n"
        f"r = c.call('run', dataset={dataset.name!r}, ids=None, model='demo', weights=None,"
        " settings=EngineSettings(device='cpu', max_detections=5), field='p', overwrite=False)\n"
        f"d = c.call('predict_image', path={dataset.first().filepath!r}, model='demo', weights=None,"
        " settings=EngineSettings(device='cpu', max_detections=5))\n"
        "c.close()\n"
        "print(json.dumps([r['report'].predicted, len(d), 'torch' in sys.modules, 'detectron2' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=os.environ)
    assert out.returncode == 0, out.stderr[-2000:]
    predicted, found, torch_loaded, detectron2_loaded = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    assert predicted == len(dataset) and found > 0
    assert not torch_loaded and not detectron2_loaded


WINDOW_THAT_DIES = """
import subprocess, sys, time
from maskreview.core.model.worker_client import WorkerClient
client = WorkerClient()
assert client.call("ping")
# a child of the window that holds the worker's request pipe open (an inherited descriptor)
holder = subprocess.Popen(["sleep", "300"], pass_fds=(client._proc.stdin.fileno(),))
print(client.pid, holder.pid, flush=True)
time.sleep(300)
"""


def test_the_worker_leaves_when_the_window_dies_even_if_its_pipe_stays_open():
    window = subprocess.Popen([sys.executable, "-c", WINDOW_THAT_DIES], stdout=subprocess.PIPE, text=True)
    worker_pid, holder_pid = map(int, window.stdout.readline().split())
    try:
        os.kill(window.pid, signal.SIGKILL)
        window.wait()
        deadline = time.monotonic() + 60
        while _alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker_pid), "the model worker outlived its window"
    finally:
        for pid in (holder_pid, worker_pid):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has left
    except FileNotFoundError:
        return False
