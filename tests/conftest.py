"""Test setup: a private FiftyOne database and data dirs for the whole run, removed at the end.

Every test's datasets are deleted after it, so tests never see each other's data.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_ROOT = Path(tempfile.mkdtemp(prefix="maskreview-tests-"))
os.environ["FIFTYONE_DATABASE_DIR"] = str(_ROOT / "db")
os.environ.pop("FIFTYONE_DATABASE_URI", None)
os.environ["MASKREVIEW_DATA_DIR"] = str(_ROOT / "data")
os.environ["MASKREVIEW_CACHE_DIR"] = str(_ROOT / "cache")
os.environ["MASKREVIEW_CONFIG_DIR"] = str(_ROOT / "config")
os.environ["QT_QPA_PLATFORM"] = "offscreen"
# Registered before FiftyOne is imported, so it runs after FiftyOne has stopped its mongod.
atexit.register(shutil.rmtree, _ROOT, True)

from maskreview.core import store  # noqa: E402
from maskreview.core.startup import quiet_library_warnings  # noqa: E402
from maskreview.gui.runtime import prepare_process  # noqa: E402

store.configure()
store.fiftyone()  # imports FiftyOne with our database service, before any test imports it
quiet_library_warnings()  # as every entry point does (cli.main, the GUI, worker processes)
prepare_process()  # what the app does before Qt starts (pytest-qt makes its own QApplication)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _gc_on_the_gui_thread(request):
    """As the app does (``gui.app.create_app``): cyclic collections only on the GUI thread, once
    a QApplication exists (a test that uses Qt)."""
    from PySide6.QtWidgets import QApplication

    from maskreview.gui.runtime import collect_on_gui_thread

    app = QApplication.instance()
    collector = collect_on_gui_thread(app) if app is not None else None
    yield
    if collector is not None:  # a test without an event loop still gets its collections
        collector.collect()


@pytest.fixture(scope="session")
def fo():
    return store.connect()


@pytest.fixture(autouse=True)
def _delete_new_datasets(request):
    if "fo" not in request.fixturenames and "demo_coco" not in request.fixturenames:
        yield
        return
    fo = store.connect()
    before = set(fo.list_datasets())
    yield
    for name in set(fo.list_datasets()) - before:
        fo.delete_dataset(name)


@pytest.fixture(scope="session")
def demo_coco(tmp_path_factory) -> Path:
    """A small synthetic demo set (COCO JSON + PNGs), shared read-only by the tests."""
    from maskreview.core.demo import write_demo_dataset

    return write_demo_dataset(tmp_path_factory.mktemp("demo"), n=12, seed=7)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A model dir of the demo architecture with random weights (see helpers_engine.py)."""
    from helpers_engine import make_tiny_model_dir

    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny_model"))


def run_cli(*args: str, check: bool = False, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m maskreview`` in a fresh process against the tests' database."""
    proc = subprocess.run([sys.executable, "-m", "maskreview", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy(), cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"maskreview {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc
