"""Model internals: the stage-by-stage capture equals the predictor, and ROI Align / ROI Pool do what
their pictures say (checked against bilinear sampling and max-pooling written out by hand)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from maskreview.core.model import internals as it
from maskreview.core.demo import make_scene

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["circle", "square", "triangle", "ring", "cross"]


def build_tiny_model(out: Path, opts: list | None = None, config: Path | None = None) -> Path:
    """A random-init model folder with the demo architecture (or ``config``), as ``train`` writes it."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_file(str(config or REPO / "resources/models/demo-r18-fpn.yaml"))
    cfg.merge_from_list(opts or [])
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    model = build_model(cfg)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(cfg.dump())
    torch.save(model.state_dict(), out / "model_final.pth")
    (out / "classes.json").write_text(json.dumps(CLASSES))
    return out


def load_engine(model_dir: Path, max_detections: int = 100):
    from maskreview.core.model.engine import Engine, EngineSettings

    return Engine(str(model_dir), settings=EngineSettings(device="cpu", score_thresh=0.0, max_detections=max_detections))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def engine(tiny_dir):
    return load_engine(tiny_dir)


@pytest.fixture(scope="module")
def scene():
    return make_scene(7, 0)


@pytest.fixture(scope="module")
def cap(engine, scene):
    return it.capture(engine, scene[0])


# ------------------------------------------------------------------------------ capture vs predictor

def test_capture_equals_predictor(engine, scene, cap):
    ref = engine.predict_instances([scene[0]])[0]
    assert len(ref) == cap.num_instances > 0
    assert torch.equal(cap.instances.pred_boxes.tensor, ref.pred_boxes.tensor)
    assert torch.equal(cap.instances.scores, ref.scores)
    assert torch.equal(cap.instances.pred_classes, ref.pred_classes)
    assert torch.equal(cap.instances.pred_masks, ref.pred_masks)
    assert set(cap.instances.get_fields()) == set(ref.get_fields())
    assert cap.mask_logits.shape == (len(ref), 28, 28)
    assert cap.instance_proposal.shape == (len(ref),) and cap.unavailable == {}


def test_fpn_levels_and_strides(cap):
    assert list(cap.fpn) == ["p2", "p3", "p4", "p5", "p6"]
    assert cap.strides == {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}
    for name, fmap in cap.fpn.items():
        assert fmap.shape == (128, 256 // cap.strides[name], 256 // cap.strides[name])


def test_proposal_counts_and_order(engine, scene, cap):
    post, pre = cap.proposals, cap.proposals_pre
    assert 0 < len(post) <= cap.post_nms_topk == 500
    assert len(post) < len(pre)
    assert np.all(np.diff(post.objectness) <= 0) and np.all(np.diff(pre.objectness) <= 0)
    for lvl in range(len(cap.rpn_levels)):  # the per-level top-k before NMS
        assert 0 < (pre.level == lvl).sum() <= cap.pre_nms_topk
    assert np.all(post.level >= 0)  # every post-NMS box is one of the pre-NMS boxes
    assert post.boxes.min() >= 0 and post.boxes[:, [0, 2]].max() <= 256 and post.boxes[:, [1, 3]].max() <= 256
    # the same proposals as the model's own RPN forward
    with torch.inference_mode():
        images = engine.model.preprocess_image([engine.prepare(scene[0])])
        features = engine.model.backbone(images.tensor)
        ref, _ = engine.model.proposal_generator(images, features, None)
    assert np.array_equal(post.boxes, ref[0].proposal_boxes.tensor.numpy())
    assert np.array_equal(post.objectness, ref[0].objectness_logits.numpy())


def test_mask_head_soft_and_pasted(cap):
    for k in range(3):
        assert np.array_equal(it.pasted_mask(cap, k, 0.5), cap.instances.pred_masks[k].numpy())
        low, high = it.pasted_mask(cap, k, 0.2), it.pasted_mask(cap, k, 0.8)
        assert np.all(high <= low)  # a higher threshold only removes pixels
        mv = it.mask_view(cap, k)
        assert mv.probs.shape == (28, 28) and 0 <= mv.probs.min() and mv.probs.max() <= 1


def test_proposals_that_led_to_an_instance(cap):
    for k in range(5):
        idx = it.proposals_for_instance(cap, k)
        src = it.source_proposal(cap, k)
        assert src in idx
        ious = it.box_iou(cap.instance_boxes()[k], cap.proposals.boxes[idx])[0]
        assert np.all((ious > 0.5) | (idx == src))
        assert np.all(np.diff(idx) > 0)  # best objectness first


def test_roi_view_uses_the_models_pooler(engine, scene, cap):
    from detectron2.structures import Boxes

    for k in (0, 7):
        box = cap.instance_boxes()[k]
        rv = it.roi_view(cap, box, "mask")
        with torch.inference_mode():
            images = engine.model.preprocess_image([engine.prepare(scene[0])])
            features = engine.model.backbone(images.tensor)
            rh = engine.model.roi_heads
            ref = rh.mask_pooler([features[f] for f in rh.mask_in_features], [Boxes(torch.as_tensor(box[None]))])
        assert rv.output_size == 14 and rv.align.shape == (128, 14, 14)
        np.testing.assert_allclose(rv.align, ref[0].numpy(), rtol=1e-5, atol=1e-5)
        assert rv.pool.shape == rv.align.shape and not np.allclose(rv.pool, rv.align)
    assert it.roi_view(cap, cap.proposals.boxes[0], "box").output_size == 7


# ------------------------------------------------------------------------------ ROI Align / Pool by hand

def _bilinear(fmap: np.ndarray, y: float, x: float) -> np.ndarray:
    """Bilinear interpolation at continuous feature-index coordinates (cell k's centre is at k)."""
    H, W = fmap.shape[1:]
    y, x = min(max(y, 0.0), H - 1.0), min(max(x, 0.0), W - 1.0)
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    y1, x1 = min(y0 + 1, H - 1), min(x0 + 1, W - 1)
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * fmap[:, y0, x0] + (1 - ly) * lx * fmap[:, y0, x1]
            + ly * (1 - lx) * fmap[:, y1, x0] + ly * lx * fmap[:, y1, x1])


def _hand_capture(fmap: np.ndarray, stride: int, out: int, sampling: int) -> it.Capture:
    H, W = fmap.shape[1] * stride, fmap.shape[2] * stride
    info = it.PoolerInfo(["p3"], [1 / stride], out, sampling, True, 3, 3, 224, 4)
    return it.Capture((H, W), (H, W), {"p3": fmap}, {"p3": stride}, "hand", box_pooler=info)


FEAT = np.random.default_rng(3).normal(size=(2, 10, 12)).astype(np.float32)


def test_roi_align_equals_hand_bilinear():
    from detectron2.layers import ROIAlign

    stride, S, g = 4, 3, 2
    box = np.array([5.3, 7.9, 33.1, 30.2])  # image pixels
    cap = _hand_capture(FEAT, stride, S, g)
    rv = it.roi_view(cap, box)
    # by hand: aligned=True shifts the box by half a cell, then g x g points per bin are averaged
    x0, y0, x1, y1 = box / stride - 0.5
    bw, bh = (x1 - x0) / S, (y1 - y0) / S
    hand = np.zeros((2, S, S), np.float64)
    for i in range(S):
        for j in range(S):
            pts = [_bilinear(FEAT, y0 + i * bh + (a + 0.5) * bh / g, x0 + j * bw + (b + 0.5) * bw / g)
                   for a in range(g) for b in range(g)]
            hand[:, i, j] = np.mean(pts, axis=0)
    d2 = ROIAlign((S, S), 1 / stride, g, aligned=True)(torch.as_tensor(FEAT[None]),
                                                       torch.as_tensor([[0, *box]], dtype=torch.float32))
    np.testing.assert_allclose(d2[0].numpy(), hand, atol=1e-5)
    np.testing.assert_allclose(rv.align, hand, atol=1e-5)
    # the drawn sample points are exactly where the hand sampling happened (image px -> feature index)
    assert rv.grid == (g, g) and len(rv.sample_x) == S * g and len(rv.sample_y) == S * g
    xs, ys = rv.sample_x / stride - 0.5, rv.sample_y / stride - 0.5
    redo = np.array([[np.mean([_bilinear(FEAT, ys[i * g + a], xs[j * g + b]) for a in range(g) for b in range(g)],
                              axis=0) for j in range(S)] for i in range(S)]).transpose(2, 0, 1)
    np.testing.assert_allclose(redo, hand, atol=1e-5)
    np.testing.assert_allclose(rv.bin_x, np.linspace(box[0], box[2], S + 1), atol=1e-9)
    np.testing.assert_allclose(rv.bin_y, np.linspace(box[1], box[3], S + 1), atol=1e-9)


def test_roi_align_adaptive_sampling_ratio():
    cap = _hand_capture(FEAT, 4, 3, 0)  # 0: ceil(roi size in cells / bins) samples per bin
    rv = it.roi_view(cap, np.array([2.0, 3.0, 44.0, 22.0]))
    assert rv.grid == (math.ceil(19 / 4 / 3), math.ceil(42 / 4 / 3))


def test_roi_pool_quantizes():
    from torchvision.ops import roi_pool

    stride, S = 4, 3
    box = np.array([5.3, 7.9, 33.1, 30.2])
    cap = _hand_capture(FEAT, stride, S, 2)
    rv = it.roi_view(cap, box)
    # by hand: round the box to whole cells, split into integer bins, take the max of each bin
    a0, b0, a1, b1 = (int(math.floor(v / stride + 0.5)) for v in box)  # x 1..8, y 2..8
    w, h = a1 - a0 + 1, b1 - b0 + 1
    hand = np.zeros((2, S, S), np.float32)
    for i in range(S):
        for j in range(S):
            ys = slice(b0 + math.floor(i * h / S), b0 + math.ceil((i + 1) * h / S))
            xs = slice(a0 + math.floor(j * w / S), a0 + math.ceil((j + 1) * w / S))
            hand[:, i, j] = FEAT[:, ys, xs].max(axis=(1, 2))
    ref = roi_pool(torch.as_tensor(FEAT[None]), torch.as_tensor([[0, *box]], dtype=torch.float32), (S, S), 1 / stride)
    np.testing.assert_array_equal(ref[0].numpy(), hand)
    np.testing.assert_array_equal(rv.pool, hand)
    assert rv.pool_x[0, 0] == a0 * stride and rv.pool_y[0, 0] == b0 * stride  # drawn bins snap to cells
    assert np.all(np.mod(np.concatenate([rv.pool_x, rv.pool_y]), stride) == 0)
    # a shift smaller than the rounding step leaves ROI Pool unchanged, but ROI Align moves
    moved = it.roi_view(cap, box + np.array([0.4, 0.5, 0.4, 0.5]))  # a quarter cell at most
    np.testing.assert_array_equal(moved.pool, rv.pool)
    assert np.abs(moved.align - rv.align).max() > 1e-3


# ------------------------------------------------------------------------------ bad input and big images

def test_huge_image_uses_the_test_size(tiny_dir):
    engine = load_engine(tiny_dir, max_detections=3)
    rng = np.random.default_rng(0)
    image = np.kron(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8), np.ones((100, 100, 1), np.uint8))
    cap = it.capture(engine, image)  # 3000 x 2000 -> shortest edge 256, as the predictor resizes
    assert cap.image_size == (2000, 3000) and cap.input_size == (256, 384)
    assert cap.fpn["p2"].shape[1:] == (64, 96) and cap.fpn["p6"].shape[1:] == (4, 6)
    assert cap.instances.image_size == (2000, 3000) and cap.instances.pred_masks.shape[1:] == (2000, 3000)
    assert cap.proposals.boxes[:, 2].max() > 384  # proposals are given in image pixels
    ref = engine.predict_instances([image])[0]
    assert torch.equal(cap.instances.pred_masks, ref.pred_masks)


def test_faster_rcnn_has_no_mask_view(tmp_path, scene):
    engine = load_engine(build_tiny_model(tmp_path / "frcnn", ["MODEL.MASK_ON", False]))
    cap = it.capture(engine, scene[0])
    assert set(cap.unavailable) == {"mask"} and "mask view unavailable" in cap.message()
    assert "MASK_ON" in cap.message()
    assert cap.num_instances > 0 and len(cap.proposals) > 0 and not cap.instances.has("pred_masks")
    assert it.roi_view(cap, cap.proposals.boxes[0]).align.shape == (128, 7, 7)
    with pytest.raises(Exception, match="mask"):
        it.mask_view(cap, 0)
    ref = engine.predict_instances([scene[0]])[0]
    assert torch.equal(cap.instances.pred_boxes.tensor, ref.pred_boxes.tensor)


def test_retinanet_shows_only_fpn(tmp_path, scene):
    cfg = tmp_path / "retina.yaml"
    cfg.write_text("""
MODEL:
  META_ARCHITECTURE: RetinaNet
  BACKBONE: {NAME: build_retinanet_resnet_fpn_backbone}
  RESNETS: {DEPTH: 18, RES2_OUT_CHANNELS: 64, OUT_FEATURES: [res3, res4, res5], NORM: BN}
  FPN: {IN_FEATURES: [res3, res4, res5], OUT_CHANNELS: 64}
  RETINANET: {NUM_CLASSES: 5, NUM_CONVS: 1}
  ANCHOR_GENERATOR: {SIZES: [[32], [64], [128], [256], [512]]}
INPUT: {MIN_SIZE_TEST: 256, MAX_SIZE_TEST: 512}
""")
    engine = load_engine(build_tiny_model(tmp_path / "retina", config=cfg))
    cap = it.capture(engine, scene[0])
    assert set(cap.unavailable) == {"rpn", "roi", "mask"} and "RetinaNet has no RPN" in cap.message()
    assert list(cap.fpn) == ["p3", "p4", "p5", "p6", "p7"] and cap.proposals is None
    ref = engine.predict_instances([scene[0]])[0]
    assert torch.equal(cap.instances.pred_boxes.tensor, ref.pred_boxes.tensor)


def test_unknown_level_is_refused_before_any_work(engine):
    from maskreview.core.errors import BadInputError

    it.check_level(engine, "p3")
    with pytest.raises(BadInputError, match=r"level 'p9' is not in this backbone; choose one of p2, p3, p4, p5, p6"):
        it.check_level(engine, "p9")


def test_bad_image_is_refused(engine):
    with pytest.raises(Exception, match="RGB"):
        it.capture(engine, np.zeros((20, 20), np.uint8))
