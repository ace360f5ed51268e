"""Importing maskreview changes nothing process-wide; the entry points do (issue #15)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

PROBE = """
import json, sys, warnings
import numpy, PIL.Image, pycocotools.mask, PySide6.QtWidgets  # libraries add filters of their own on import
before = (sys.getswitchinterval(), sys.getrefcount(None), len(warnings.filters))
import maskreview.gui, maskreview.gui.main_window, maskreview.core.model.registry, maskreview.core.model.engine
after = (sys.getswitchinterval(), sys.getrefcount(None), len(warnings.filters))
from maskreview.gui.app import create_app
create_app()
started = (sys.getswitchinterval(), sys.getrefcount(None), len(warnings.filters))
print(json.dumps([before, after, started]))
"""


def test_imports_leave_the_process_alone_and_the_app_sets_it_up():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, after, started = json.loads(proc.stdout.strip().splitlines()[-1])
    assert after[0] == before[0], "importing the GUI changed the switch interval"
    assert after[2] == before[2], "importing maskreview added warning filters"
    assert abs(after[1] - before[1]) < 1 << 40, "importing the GUI changed None's reference count"
    assert started[0] == 0.001  # the app's start-up does it
    if sys.version_info < (3, 12):
        assert started[1] - after[1] > 1 << 40


def test_the_cli_quiets_library_warnings():
    from maskreview.core.startup import quiet_library_warnings
    import warnings

    with warnings.catch_warnings():
        warnings.resetwarnings()
        quiet_library_warnings()
        messages = [f[1].pattern for f in warnings.filters if f[0] == "ignore" and f[1] is not None]
    assert any("meshgrid" in m for m in messages) and any("pkg_resources" in m for m in messages)


def test_training_mapper_warning_is_quieted_in_a_fresh_process(tmp_path):
    """detectron2's DatasetMapper turns resized masks into tensors from read-only arrays; torch
    warns once per process ("not writable") in every fine-tune. Quieted, and only there."""
    import subprocess
    import sys

    script = f'''
import warnings, numpy as np, cv2
from pycocotools import mask as mask_utils
warnings.simplefilter("error", UserWarning)
from maskreview.core.startup import quiet_library_warnings
quiet_library_warnings()
from detectron2.data import DatasetMapper, transforms as T
from detectron2.structures import BoxMode
image = np.zeros((40, 60, 3), np.uint8)
cv2.imwrite("{tmp_path}/a.png", image)
bitmap = np.zeros((40, 60), np.uint8, order="F"); bitmap[5:20, 10:30] = 1
rle = mask_utils.encode(bitmap); rle["counts"] = rle["counts"].decode()
record = {{"file_name": "{tmp_path}/a.png", "height": 40, "width": 60, "image_id": 0, "annotations": [
    {{"bbox": [10, 5, 20, 15], "bbox_mode": BoxMode.XYWH_ABS, "segmentation": rle, "category_id": 0, "iscrowd": 0}}]}}
mapper = DatasetMapper(is_train=True, image_format="BGR", use_instance_mask=True, instance_mask_format="bitmask",
                       augmentations=[T.ResizeShortestEdge(80, 200)])
out = mapper(record)
assert out["instances"].gt_masks.tensor.shape == (1, 80, 120)
print("ok")
'''
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
