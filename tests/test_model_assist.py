"""Model-assisted correction (core/model/assist.py): box -> mask through the demo model's own ROI
heads, GrabCut refinement and intelligent-scissors polygons, on real images and the real model."""

from __future__ import annotations

import numpy as np
import pytest

from maskreview.core.errors import BadInputError
from maskreview.core.model import assist


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def engine():
    from maskreview.core.model.engine import Engine, EngineSettings
    from maskreview.core.model.registry import DEMO_MODEL_DIR

    if not (DEMO_MODEL_DIR / "model_final.pth").is_file():
        pytest.skip("the demo model's weights are not in this checkout")
    return Engine("demo", settings=EngineSettings(device="cpu"))


@pytest.fixture(scope="module")
def scene():
    from maskreview.core.demo import make_scene

    return make_scene(0, 3)


def test_box_to_mask_on_the_models_own_box_gives_its_own_mask(engine, scene):
    image, _ = scene
    instances = engine.predict_instances([image])[0]
    confident = np.flatnonzero(instances.scores.numpy() > 0.5)
    assert len(confident) >= 3
    helper = assist.MaskAssist(engine)
    for i in confident.tolist():
        box = instances.pred_boxes.tensor[i].tolist()
        own = instances.pred_masks[i].numpy()
        label = engine.classes[int(instances.pred_classes[i])]
        proposal = helper.box_to_mask(image, box, label=label)
        assert _iou(proposal.bitmap, own) >= 0.9
        assert proposal.kind == "box" and 0 < proposal.score <= 1
        if instances.scores[i] > 0.95:  # the box head classifies the final (regressed) box the same
            assert helper.box_to_mask(image, box).label == label


def test_box_to_mask_with_the_reviewers_class_and_refine(engine, scene):
    image, objects = scene
    helper = assist.MaskAssist(engine)
    cls, truth = max(objects, key=lambda o: o[1].sum())
    ys, xs = np.nonzero(truth)
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    proposal = helper.box_to_mask(image, box, label=cls)
    assert proposal.label == cls
    assert _iou(proposal.bitmap, truth) > 0.8  # the demo model knows its shapes
    refined = helper.refine(image, truth)  # the mask's own tight box
    assert refined.kind == "refine" and _iou(refined.bitmap, proposal.bitmap) > 0.9
    with pytest.raises(BadInputError, match="2 pixels"):
        helper.box_to_mask(image, (10, 10, 11, 40))


def test_propose_mask_keeps_one_helper_per_engine(engine, scene):
    image, _ = scene
    first = assist.propose_mask(engine, image, (20, 20, 120, 120))
    assert engine._mask_assist is not None
    again = assist.propose_mask(engine, image, (20, 20, 120, 120))
    assert np.array_equal(first.bitmap, again.bitmap)


def _blurred(mask: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma) > 0.25


def test_grabcut_refinement_improves_a_blurred_mask(scene):
    image, objects = scene
    improved = 0
    for _, truth in objects:
        if truth.sum() < 300:
            continue
        rough = _blurred(truth)
        refined = assist.grabcut_refine(image, rough)
        assert refined.kind == "grabcut"
        assert _iou(refined.bitmap, truth) > _iou(rough, truth)
        improved += 1
    assert improved >= 2


def test_grabcut_on_a_big_crop_works_at_reduced_size():
    import cv2

    image = np.full((900, 900, 3), 40, np.uint8)
    truth = np.zeros((900, 900), np.uint8)
    cv2.circle(truth, (450, 450), 300, 1, -1)
    truth = truth.astype(bool)
    image[truth] = (220, 200, 60)
    rough = _blurred(truth, 15)
    refined = assist.grabcut_refine(image, rough, max_side=240)
    assert _iou(refined.bitmap, truth) > max(0.97, _iou(rough, truth))


def test_scissors_polygon_snaps_to_the_object_edges():
    image = np.full((120, 120, 3), 30, np.uint8)
    image[30:90, 25:95] = (230, 230, 230)
    truth = np.zeros((120, 120), bool)
    truth[30:90, 25:95] = True
    clicks = [(27, 33), (92, 28), (96, 87), (24, 91)]  # a few pixels off the corners
    proposal = assist.scissors_polygon(image, clicks)
    import cv2

    plain = np.zeros((120, 120), np.uint8)
    cv2.fillPoly(plain, [np.array(clicks, np.int32).reshape(-1, 1, 2)], 1)
    assert _iou(proposal.bitmap, truth) > _iou(plain.astype(bool), truth)
    assert _iou(proposal.bitmap, truth) > 0.9
    with pytest.raises(BadInputError, match="3 points"):
        assist.scissors_polygon(image, clicks[:2])
