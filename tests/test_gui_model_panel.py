"""The Model panel computes on a worker thread, caches per (image, model) and draws every view."""

from __future__ import annotations

import numpy as np
import pytest

from maskreview.core.demo import make_scene
from test_internals import build_tiny_model, load_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return load_engine(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def _gt_detections(scene):
    from maskreview.core import masks as mk

    image, objects = scene
    return [mk.bitmap_to_detection(m, cls) for cls, m in objects]


def test_panel_computes_and_draws_each_view(qtbot, engine):
    from maskreview.gui.panels.model_panel import make_dock

    dock, panel = make_dock()
    qtbot.addWidget(dock)
    dock.resize(700, 900)
    dock.show()
    scene = make_scene(7, 1)
    panel.set_engine(engine)
    with qtbot.waitSignal(panel.computed, timeout=120_000):
        panel.set_image("s1", scene[0], gt_detections=_gt_detections(scene))
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

    # controls change the views
    panel.tabs.setCurrentIndex(0)
    before = panel.views["FPN"].copy()
    panel.fpn_level.setCurrentText("p5")
    assert not np.array_equal(before, panel.views["FPN"])
    panel.tabs.setCurrentIndex(1)
    top50 = panel.views["RPN"].copy()
    panel.rpn_topk.setValue(5)
    assert not np.array_equal(top50, panel.views["RPN"])
    panel.select_instance(2)
    assert panel.rpn_instance.value() == 2 and panel.mask_instance.value() == 2
    assert panel.roi_index.value() == int(panel.capture.instance_proposal[2])
    panel.tabs.setCurrentIndex(3)
    half = panel.views["Mask head"].copy()
    panel.mask_threshold.setValue(90)
    assert not np.array_equal(half, panel.views["Mask head"])

    # cached per image: showing the same image again starts no job
    with qtbot.waitSignal(panel.computed, timeout=1_000):
        panel.set_image("s1", scene[0])
    assert panel.jobs_started == 1


def test_panel_says_which_views_a_detector_lacks(qtbot, tmp_path):
    from maskreview.gui.panels.model_panel import ModelPanel

    engine = load_engine(build_tiny_model(tmp_path / "frcnn", ["MODEL.MASK_ON", False]), max_detections=5)
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.set_engine(engine)
    with qtbot.waitSignal(panel.computed, timeout=120_000):
        panel.set_image("x", make_scene(7, 2)[0])
    assert "mask view unavailable" in panel.status.text()
    views = panel.render_all()
    assert views["FPN"].std() > 10 and views["RPN"].std() > 10  # the other views still work
    assert views["Mask head"].shape[0] < 100  # a message, not a picture
