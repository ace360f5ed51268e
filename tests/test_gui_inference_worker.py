"""The window and the model worker process: the window never imports torch, and a worker killed
mid-run (a real ``kill -9``) is reported, restarted, and every edit made during the run stays."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_gui import open_window
from maskreview.core.sources import open_source

RUN_MS = 180_000
HERE = Path(__file__).resolve().parent


def test_the_window_runs_the_model_without_importing_torch(demo_coco, tmp_path):
    dropped = demo_coco.parent / "images" / json.loads(demo_coco.read_text())["images"][0]["file_name"]
    assert dropped.is_file()
    out = subprocess.run([sys.executable, str(HERE / "helpers_worker_gui.py"), str(demo_coco), str(tmp_path),
                          str(dropped)], capture_output=True, text=True, timeout=300, env=os.environ)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no result (exit {out.returncode}): {out.stderr[-3000:]}"
    found = json.loads(lines[-1][len("RESULT "):])
    assert found["predicted"] == 12, found  # the whole demo set, written by the worker
    assert found.get("panel_instances", -1) >= 0 and "panel_error" not in found, found  # the Model panel drew
    assert found["dropped"] > 0, found  # the dropped image got predictions
    assert found["torch"] is False and found["detectron2"] is False, found
    assert found["worker_pid"] and found["worker_pid"] != out.returncode


@pytest.fixture
def window(qtbot, fo, tmp_path, monkeypatch):
    from maskreview.core.demo import write_demo_dataset

    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    win = open_window(qtbot, tmp_path, open_source(write_demo_dataset(tmp_path / "demo", n=30, seed=5)), (1400, 900))
    win.engine_settings.max_detections = 8
    yield win
    win.close()


def test_worker_killed_mid_run_is_reported_restarted_and_edits_stay(window, qtbot):
    from maskreview.core.fields import GT_FIELD
    from maskreview.gui import integration

    win = window
    win.model_runs.choose("demo")
    client = win.model_worker
    job = win.run_inference("dataset", overwrite=True)
    qtbot.waitUntil(lambda: bool(job.written), timeout=RUN_MS)  # the first batch has landed

    # the reviewer edits while the model runs: relabel a ground-truth label, then the worker dies
    gt = win.canvas.data.fields[GT_FIELD][0]
    other = next(c for c in win.classes if c != gt.label)
    win.canvas.select_label(GT_FIELD, gt.id)
    assert integration.relabel_selected(win, other) is not None
    edits = win.undo_stack.count()
    killed = client.pid
    os.kill(killed, signal.SIGKILL)
    qtbot.waitUntil(lambda: win.inference is None, timeout=RUN_MS)

    message = win._message.text() if win._message is not None else ""
    assert "SIGKILL" in message and "restarted" in message and "edits are kept" in message, message
    qtbot.waitUntil(lambda: client.running and client.pid != killed, timeout=10_000)
    win.dataset.reload()
    sample = win.dataset[win.canvas.data.sample_id]
    assert next(d for d in sample[GT_FIELD].detections if d.id == gt.id).label == other  # the edit is stored
    written = win.dataset.count("predictions_run")
    assert 0 < written < len(win.dataset)  # stopped mid-run; its batches stay
    assert win.undo_stack.count() >= edits  # the edit is still undoable (the partial run is one more step)

    # the restarted worker finishes the rest; the edit survives that too
    job = win.run_inference("dataset", skip_if_current=True)
    qtbot.waitUntil(lambda: win.inference is None and not job.isRunning(), timeout=RUN_MS)
    outcome = win.model_runs.last_outcome
    assert outcome.report.predicted == len(win.dataset) - written
    win.dataset.reload()
    sample = win.dataset[sample.id]
    assert next(d for d in sample[GT_FIELD].detections if d.id == gt.id).label == other
