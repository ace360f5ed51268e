"""Imports are all or nothing: an import killed half-way (the importer, or mongod) is never taken for
a whole dataset; rerunning it says that the earlier one did not finish and imports it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from conftest import REPO, run_cli
from maskreview.core import masks as mk
from maskreview.core import sources
from maskreview.core.errors import BadInputError

N_IMAGES = 3000  # six batches of writes: enough time to be killed in the middle


def many_images_coco(folder, n=N_IMAGES):
    """A COCO file of ``n`` images (hard links to one PNG), one RLE instance each."""
    images = folder / "images"
    images.mkdir(parents=True)
    Image.fromarray(np.full((24, 32, 3), 80, np.uint8)).save(images / "0.png")
    for i in range(1, n):
        os.link(images / "0.png", images / f"{i}.png")
    bitmap = np.zeros((24, 32), np.uint8)
    bitmap[4:12, 6:20] = 1
    rle = mk.rle_to_json(mask_utils.encode(np.asfortranarray(bitmap)))
    coco = {"images": [{"id": i + 1, "file_name": f"{i}.png", "width": 32, "height": 24} for i in range(n)],
            "annotations": [{"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                             "bbox": [6, 4, 14, 8], "segmentation": rle} for i in range(n)],
            "categories": [{"id": 1, "name": "box"}]}
    path = folder / "instances.json"
    path.write_text(json.dumps(coco))
    return path


def _start_import(path, name, env=None):
    return subprocess.Popen([sys.executable, "-m", "maskreview", "import", str(path), "--name", name],
                            cwd=REPO, env=env or os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait(predicate, proc, timeout=240.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the import ended before {what}: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _written(fo, before: set) -> int:
    """Samples written so far into any dataset that appeared since ``before``."""
    count = 0
    for name in set(fo.list_datasets()) - before:
        try:
            count += len(fo.load_dataset(name))
        except Exception:  # created a moment ago, not loadable yet
            pass
    return count


@pytest.mark.slow
def test_import_killed_half_way_is_marked_and_redone_on_rerun(fo, tmp_path):
    path = many_images_coco(tmp_path)
    before = set(fo.list_datasets())
    proc = _start_import(path, "atomic-kill")
    try:
        _wait(lambda: 0 < _written(fo, before), proc, what="the first samples were written")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    left = set(fo.list_datasets()) - before
    assert left == {"atomic-kill" + sources.INCOMPLETE_SUFFIX}, left
    half = fo.load_dataset(left.pop())
    half.reload()  # this process's handle was loaded (and cached) while the import was writing
    assert 0 < len(half) < N_IMAGES and not sources.is_complete(half)
    with pytest.raises(BadInputError, match="is an import that did not finish"):
        sources.open_source(half.name)  # what the GUI calls: a half import never opens as a dataset

    rerun = run_cli("import", str(path), "--name", "atomic-kill", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert "did not finish" in rerun.stderr and "importing it again" in rerun.stderr
    assert json.loads(rerun.stdout)["samples"] == N_IMAGES
    assert set(fo.list_datasets()) - before == {"atomic-kill"}
    again = run_cli("import", str(path), "--name", "atomic-kill", "--json")
    assert again.returncode == 0 and "did not finish" not in again.stderr


def test_refused_and_failed_imports_leave_nothing(fo, tmp_path):
    path = many_images_coco(tmp_path, n=3)
    data = json.loads(path.read_text())
    data["annotations"][2]["segmentation"]["counts"] = "0T3"  # the last entry is bad
    path.write_text(json.dumps(data))
    before = set(fo.list_datasets())
    with pytest.raises(BadInputError, match="annotation 2"):
        sources.open_source(path)
    assert set(fo.list_datasets()) == before


def _mongod_of(folder):
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "mongod" in (proc.info["name"] or "") and any(str(folder) in part for part in cmdline):
            return proc
    return None


def _port_of(mongod) -> int | None:
    return next((c.laddr.port for c in mongod.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN), None)


def _samples_in(port: int, name_prefix: str) -> int:
    import pymongo

    client = pymongo.MongoClient(port=port, serverSelectionTimeoutMS=2000)
    try:
        db = client["fiftyone"]
        doc = db.datasets.find_one({"name": {"$regex": f"^{name_prefix}"}})
        return db[doc["sample_collection_name"]].estimated_document_count() if doc else 0
    except pymongo.errors.PyMongoError:
        return 0
    finally:
        client.close()


@pytest.mark.slow
def test_mongod_killed_half_way_then_rerun_finishes(tmp_path):
    """mongod of a private database folder is killed with -9 while the import writes."""
    path = many_images_coco(tmp_path)
    db = tmp_path / "db"
    env = dict(os.environ, FIFTYONE_DATABASE_DIR=str(db))
    env.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
    proc = _start_import(path, "mongod-kill", env)
    try:
        _wait(lambda: _mongod_of(db) is not None, proc, what="mongod started")
        mongod = _mongod_of(db)
        _wait(lambda: _port_of(mongod), proc, what="mongod listens")
        port = _port_of(mongod)
        _wait(lambda: _samples_in(port, "mongod-kill") > 0, proc, what="the first samples were written")
        mongod.send_signal(signal.SIGKILL)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
        assert proc.returncode != 0
        rerun = subprocess.run([sys.executable, "-m", "maskreview", "import", str(path), "--name", "mongod-kill",
                                "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert "did not finish" in rerun.stderr and "importing it again" in rerun.stderr
        assert json.loads(rerun.stdout)["samples"] == N_IMAGES
    finally:
        proc.kill()
        for _ in range(100):  # the rerun's mongod stops when its last client has gone
            if (left := _mongod_of(db)) is None:
                break
            time.sleep(0.1)
        else:
            left.kill()


@pytest.mark.slow
def test_an_import_still_running_is_not_started_again(fo, tmp_path):
    path = many_images_coco(tmp_path)
    before = set(fo.list_datasets())
    proc = _start_import(path, "atomic-busy")
    try:
        _wait(lambda: 0 < _written(fo, before), proc, what="the first samples were written")
        proc.send_signal(signal.SIGSTOP)  # alive, but writing nothing for now
        with pytest.raises(BadInputError, match=f"by process {proc.pid} right now"):
            sources.open_source(path, name="atomic-busy")
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_the_window_opens_a_half_import_only_by_importing_it_again_and_says_so(qtbot, fo, tmp_path):
    from helpers_gui import open_window

    path = many_images_coco(tmp_path / "half", n=3)
    name = sources.default_dataset_name(sources.resolve(path))
    half = fo.Dataset(name + sources.INCOMPLETE_SUFFIX, persistent=True)  # as a killed import leaves it
    half.info[sources.IMPORT_KEY] = {"complete": False, "samples": 3}
    half.info[sources.INFO_KEY] = sources.resolve(path).describe()
    half.save()
    win = open_window(qtbot, tmp_path, sources.open_source(many_images_coco(tmp_path / "other", n=1)))
    said = []
    win.statusBar().messageChanged.connect(said.append)
    win.open_source(half.name)  # the half import by its name: refused with a message, nothing opened
    qtbot.waitUntil(lambda: any("did not finish" in m for m in said), timeout=30000)
    assert win.dataset.name != half.name
    win.open_source(str(path))  # its source: imported again, and the window says so
    qtbot.waitUntil(lambda: win.dataset.name == name, timeout=60000)
    assert any("did not finish" in m and "importing it again" in m for m in said), said
    assert len(win.dataset) == 3 and half.name not in fo.list_datasets()
