"""Smoke test of the PyInstaller bundle (``make bundle`` builds dist/maskreview/; CI may leave it out).

The bundled executable runs with nothing of the checkout or the venv: a private home, database and data.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

EXE = Path(__file__).resolve().parents[1] / "dist" / "maskreview" / "maskreview"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not EXE.is_file(), reason=f"no bundle at {EXE} (build it with `make bundle`)"),
]


@pytest.fixture
def bundle_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIFTYONE_", "MASKREVIEW_", "PYTHON", "XDG_"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_HOME=str(tmp_path / "xdg-data"), XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
               FIFTYONE_DATABASE_DIR=str(tmp_path / "db"), MASKREVIEW_DATA_DIR=str(tmp_path / "data"),
               MASKREVIEW_CACHE_DIR=str(tmp_path / "cache"), FIFTYONE_DO_NOT_TRACK="true",
               FIFTYONE_DATABASE_VALIDATION="false", QT_QPA_PLATFORM="offscreen")
    return env


def run(env, tmp_path, *args, timeout=180):
    # From a folder outside the checkout, so nothing can be found relative to the working directory.
    return subprocess.run([str(EXE), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def test_bundle_prints_its_version(bundle_env, tmp_path):
    from maskreview import __version__

    result = run(bundle_env, tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"maskreview {__version__}"


def test_bundle_lists_the_demo_model_and_the_zoo_configs(bundle_env, tmp_path):
    result = run(bundle_env, tmp_path, "models")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  demo" in lines  # without "(weights missing)": the demo's weights are inside the bundle
    assert "  COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x" in lines  # detectron2's model-zoo configs


def test_bundle_runs_the_fine_tune_worker_module(bundle_env, tmp_path):
    # The fine-tune dialog starts `sys.executable -m maskreview.core.model.finetune_worker`; frozen, that is the bundle.
    result = run(bundle_env, tmp_path, "-m", "maskreview.core.model.finetune_worker", "--help")
    assert result.returncode == 0, result.stderr
    assert "--dataset" in result.stdout


def test_bundle_opens_the_window_on_the_demo(bundle_env, tmp_path):
    shot = tmp_path / "window.png"
    env = dict(bundle_env, MASKREVIEW_SCREENSHOT=str(shot), MASKREVIEW_SCREENSHOT_DELAY_MS="10000")
    result = run(env, tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert shot.is_file() and shot.stat().st_size > 10_000  # a grab of the window, not an empty file


def test_bundle_infers_evaluates_and_fine_tunes_in_worker_processes(bundle_env, tmp_path):
    # detectron2 on torch (TorchScript reads sources), mongod, the forkserver evaluation pool, the fine-tune
    # worker: all frozen.
    env = dict(bundle_env, MASKREVIEW_EVAL_WORKERS="2", MASKREVIEW_EVAL_MIN_IMAGES_PER_SHARD="1")
    coco = tmp_path / "demo" / "annotations.json"
    for args in (("demo-data", "--out", str(coco.parent), "--n", "6", "--seed", "0"),
                 ("infer", str(coco), "--model", "demo")):
        result = run(env, tmp_path, *args, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
    result = run(env, tmp_path, "eval", str(coco), "--json", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "evaluation workers failed" not in result.stderr, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1])["mAP"] > 0.3  # the demo model on demo scenes: about 0.7

    # A real fine-tune in the worker, as the dialog starts it; the samples are tagged by a script run by the
    # bundle (the way FiftyOne's service wrapper runs).
    dataset = json.loads(run(env, tmp_path, "import", str(coco), "--json").stdout)["name"]
    tag = tmp_path / "tag.py"
    tag.write_text("import sys\nfrom maskreview.core import store\nstore.configure()\nfo = store.fiftyone()\n"
                   "store.connect()\nfo.load_dataset(sys.argv[1]).tag_samples('reviewed')\n")
    assert run(env, tmp_path, str(tag), dataset).returncode == 0
    result = run(env, tmp_path, "-m", "maskreview.core.model.finetune_worker", "--dataset", dataset, "--base", "demo",
                 "--out", str(tmp_path / "ft"), "--iters", "2", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1])["event"] == "done"
    assert (tmp_path / "ft" / "model_final.pth").is_file()
