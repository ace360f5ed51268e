"""The Model panel asks the model worker process: it computes there, caches per (image, model), draws
every view there and the pictures come back as arrays."""

from __future__ import annotations

import numpy as np
import pytest

from maskreview.core.demo import make_scene
from maskreview.core.model.engine import EngineSettings
from test_internals import build_tiny_model

SETTINGS = EngineSettings(device="cpu", score_thresh=0.0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def _scene_file(tmp_path, seed: int, index: int):
    import cv2

    scene = make_scene(seed, index)
    path = str(tmp_path / f"scene_{seed}_{index}.png")
    cv2.imwrite(path, scene[0][:, :, ::-1])
    return scene, path


def _gt_detections(scene):
    from maskreview.core import masks as mk

    image, objects = scene
    return [mk.bitmap_to_detection(m, cls) for cls, m in objects]


def test_panel_computes_and_draws_each_view(qtbot, model_dir, tmp_path):
    from maskreview.gui.panels.model_panel import make_dock

    dock, panel = make_dock()
    qtbot.addWidget(dock)
    dock.resize(700, 900)
    dock.show()
    scene, path = _scene_file(tmp_path, 7, 1)
    panel.set_model(model_dir, settings=SETTINGS)
    with qtbot.waitSignal(panel.computed, timeout=120_000):
        panel.set_image("s1", scene[0], gt_detections=_gt_detections(scene), path=path)
    assert panel.jobs_started == 1 and panel.capture.num_instances > 0
    views = panel.render_all()
    assert set(views) == {"FPN", "RPN", "ROI Align", "Mask head"}
    for name, view in views.items():
        assert view.ndim == 3 and view.shape[0] > 100 and view.shape[1] > 100, name
        assert (view.max(axis=2) > 30).mean() > 0.2, name  # mostly drawn, not a blank picture
        assert len(np.unique(view.reshape(-1, 3), axis=0)) > 50, name
    shapes = {v.shape for v in views.values()}
    arrays = list(views.values())
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            assert arrays[i].shape != arrays[j].shape or not np.array_equal(arrays[i], arrays[j])
    assert len(shapes) > 1
    assert len(panel.gt_masks) == len(scene[1])  # the GT reached the mask view
    # the pictures on screen are the drawn arrays
    assert not panel.fpn_picture.pixmap().isNull() and panel.fpn_picture.array is views["FPN"]

    # controls change the views (the worker redraws; the panel shows the answer)
    panel.tabs.setCurrentIndex(0)
    before = panel.views["FPN"].copy()
    panel.fpn_level.setCurrentText("p5")
    qtbot.waitUntil(lambda: not np.array_equal(before, panel.views["FPN"]), timeout=30_000)
    panel.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: panel._in_flight is None, timeout=30_000)
    top50 = panel.views["RPN"].copy()
    panel.rpn_topk.setValue(5)
    qtbot.waitUntil(lambda: not np.array_equal(top50, panel.views["RPN"]), timeout=30_000)
    panel.select_instance(2)
    assert panel.rpn_instance.value() == 2 and panel.mask_instance.value() == 2
    assert panel.roi_index.value() == int(panel.capture.instance_proposal[2])
    panel.tabs.setCurrentIndex(3)
    qtbot.waitUntil(lambda: panel._in_flight is None, timeout=30_000)
    half = panel.views["Mask head"].copy()
    panel.mask_threshold.setValue(90)
    qtbot.waitUntil(lambda: not np.array_equal(half, panel.views["Mask head"]), timeout=30_000)

    # cached per image (in the worker): another image, then the first again, computes one more capture
    other, other_path = _scene_file(tmp_path, 7, 2)
    with qtbot.waitSignal(panel.computed, timeout=120_000):
        panel.set_image("s2", other[0], path=other_path)
    with qtbot.waitSignal(panel.computed, timeout=30_000):
        panel.set_image("s1", scene[0], path=path)
    assert panel.jobs_started == 2


def test_panel_says_which_views_a_detector_lacks(qtbot, tmp_path):
    from dataclasses import replace

    from maskreview.gui.panels.model_panel import ModelPanel

    model = str(build_tiny_model(tmp_path / "frcnn", ["MODEL.MASK_ON", False]))
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.set_model(model, settings=replace(SETTINGS, max_detections=5))
    scene, path = _scene_file(tmp_path, 7, 2)
    with qtbot.waitSignal(panel.computed, timeout=120_000):
        panel.set_image("x", scene[0], path=path)
    assert "mask view unavailable" in panel.status.text()
    views = panel.render_all()
    assert views["FPN"].std() > 10 and views["RPN"].std() > 10  # the other views still work
    assert views["Mask head"].shape[0] < 100  # a message, not a picture
