"""Inside the model: FPN maps, RPN proposals, ROI Align / ROI Pool and the mask head, per image.

:func:`capture` runs the stages of a loaded detectron2 model one by one on one image, with the
model's own modules and the predictor's test-time resize, and keeps what each stage produced:

- ``preprocess_image`` -> ``backbone``: the FPN maps (P2-P6 for a Mask R-CNN FPN);
- ``proposal_generator`` (RPN): anchors + ``rpn_head`` outputs decoded into proposals, the
  per-level top-k before NMS and the post-NMS proposals the ROI heads see;
- ``roi_heads``: box pooler -> box head -> box predictor (which also tells which proposal each
  detection was refined from) -> mask pooler -> mask head logits (28x28) -> ``detector_postprocess``.

The final instances equal what :meth:`Engine.predict_instances` returns for the same image.
:func:`roi_view` pools one box with the model's ROI Align (and, for comparison, torchvision's
ROI Pool on the same level) and returns the bin edges and bilinear sample points in image pixels.
Coordinates are in the original image's pixels unless a name says ``input`` (the resized image
the network sees).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from maskreview.core.errors import BadInputError

VIEWS = ("fpn", "rpn", "roi", "mask")


@dataclass
class Proposals:
    """RPN proposals, best first."""

    boxes: np.ndarray  # N x 4 xyxy, image pixels
    objectness: np.ndarray  # N logits
    level: np.ndarray  # N, index into Capture.rpn_levels

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def scores(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.objectness))


@dataclass
class PoolerInfo:
    """What a detectron2 ``ROIPooler`` does, enough to redo it for one box."""

    levels: list[str]  # feature names, finest first
    scales: list[float]  # 1 / stride per level
    output_size: int
    sampling_ratio: int  # 0: adaptive, ceil(roi size / output size)
    aligned: bool
    min_level: int
    max_level: int
    canonical_box_size: int
    canonical_level: int


@dataclass
class Capture:
    image_size: tuple[int, int]  # (H, W) of the original image
    input_size: tuple[int, int]  # (h, w) the network sees, before padding
    fpn: dict[str, np.ndarray]  # name -> C x Hl x Wl (padded input)
    strides: dict[str, int]
    meta_architecture: str
    rpn_levels: list[str] = field(default_factory=list)
    proposals_pre: Proposals | None = None  # per-level top-k going into NMS
    proposals: Proposals | None = None  # post-NMS, what the ROI heads see
    instances: object = None  # detectron2 Instances on the CPU, as the predictor returns them
    instance_proposal: np.ndarray | None = None  # for each instance, the proposal its box was refined from
    mask_logits: np.ndarray | None = None  # N x M x M, the predicted class's channel
    box_pooler: PoolerInfo | None = None
    mask_pooler: PoolerInfo | None = None
    unavailable: dict[str, str] = field(default_factory=dict)  # view -> why
    pre_nms_topk: int = 0
    post_nms_topk: int = 0

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy): image pixels per input pixel."""
        return self.image_size[1] / self.input_size[1], self.image_size[0] / self.input_size[0]

    @property
    def num_instances(self) -> int:
        return 0 if self.instances is None else len(self.instances)

    def instance_boxes(self) -> np.ndarray:
        if not self.num_instances:
            return np.zeros((0, 4), np.float32)
        return self.instances.pred_boxes.tensor.numpy()

    def message(self) -> str:
        """One line naming the views this model cannot show, or ''."""
        if not self.unavailable:
            return ""
        return "; ".join(f"{view} view unavailable: {why}" for view, why in self.unavailable.items())


@dataclass
class RoiView:
    """One box pooled by ROI Align and by ROI Pool on the level the model's pooler picks for it."""

    box: np.ndarray  # xyxy, image pixels
    level: str
    stride: int
    output_size: int
    grid: tuple[int, int]  # bilinear samples per bin (gy, gx)
    aligned: bool
    align: np.ndarray  # C x S x S
    pool: np.ndarray  # C x S x S
    bin_x: np.ndarray  # S+1 bin edges, image pixels
    bin_y: np.ndarray
    sample_x: np.ndarray  # S*gx sample x positions, image pixels (the grid is their product)
    sample_y: np.ndarray
    pool_x: np.ndarray  # S x 2 quantized ROI Pool bins [start, end), image pixels
    pool_y: np.ndarray
    cell: tuple[float, float]  # size of one feature cell (x, y), image pixels


@dataclass
class MaskView:
    index: int
    label: int
    box: np.ndarray  # xyxy, image pixels
    logits: np.ndarray  # M x M

    @property
    def probs(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits))


# --------------------------------------------------------------------------------------------
# capture
# --------------------------------------------------------------------------------------------

def _np(t) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def _pooler_info(pooler, names: list[str]) -> PoolerInfo | None:
    from detectron2.layers import ROIAlign

    first = pooler.level_poolers[0]
    if not isinstance(first, ROIAlign):  # ROIAlignRotated, ROIPool: no sampling grid to show
        return None
    return PoolerInfo(list(names), [float(p.spatial_scale) for p in pooler.level_poolers], int(pooler.output_size[0]),
                      int(first.sampling_ratio), bool(first.aligned), int(pooler.min_level), int(pooler.max_level),
                      int(pooler.canonical_box_size), int(pooler.canonical_level))


def check_level(engine, level: str) -> None:
    """Refuse a feature level the model's backbone does not produce (before any work is done)."""
    names = list(engine.model.backbone.output_shape())
    if level not in names:
        raise BadInputError(f"level {level!r} is not in this backbone; choose one of {', '.join(names)}")


def capture(engine, image_rgb: np.ndarray) -> Capture:
    """Run ``engine.model`` stage by stage on one RGB image and keep every stage's output."""
    import torch
    from detectron2.modeling.meta_arch.rcnn import GeneralizedRCNN

    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise BadInputError(f"expected an H x W x 3 uint8 RGB image, got {image_rgb.dtype} {image_rgb.shape}")
    model = engine.model
    inputs = engine.prepare(image_rgb)
    with torch.inference_mode():
        images = model.preprocess_image([inputs])
        features = model.backbone(images.tensor)
    shapes = model.backbone.output_shape()
    cap = Capture(image_size=(inputs["height"], inputs["width"]), input_size=tuple(images.image_sizes[0]),
                  fpn={k: _np(v[0]) for k, v in features.items()},
                  strides={k: int(shapes[k].stride) for k in features},
                  meta_architecture=type(model).__name__)
    if not any(k.startswith("p") for k in features):
        cap.unavailable["fpn"] = f"the backbone has no FPN; showing its output {', '.join(features)} instead"
    if not isinstance(model, GeneralizedRCNN) or model.proposal_generator is None:
        why = f"{cap.meta_architecture} has no RPN and no ROI heads"
        cap.unavailable.update(rpn=why, roi=why, mask=why)
        with torch.inference_mode():
            cap.instances = engine.predict_instances([image_rgb])[0]
        return cap
    with torch.inference_mode():
        proposals = _run_rpn(model.proposal_generator, images, features, cap)
        results = _run_roi_heads(model.roi_heads, features, proposals, cap)
        _postprocess(results, cap)
    if cap.mask_logits is None:
        cap.unavailable["mask"] = "the model has no mask head (not a Mask R-CNN: MODEL.MASK_ON is off)"
    if cap.box_pooler is None:
        cap.unavailable["roi"] = "the ROI heads do not pool with ROI Align on FPN levels"
    return cap


def _run_rpn(rpn, images, features, cap: Capture):
    from detectron2.modeling.proposal_generator.proposal_utils import find_top_rpn_proposals

    feats = [features[f] for f in rpn.in_features]
    anchors = rpn.anchor_generator(feats)
    logits, deltas = rpn.rpn_head(feats)
    # the same reshapes as RPN.forward: (N, A, H, W) -> (N, H*W*A); (N, A*4, H, W) -> (N, H*W*A, 4)
    logits = [s.permute(0, 2, 3, 1).flatten(1) for s in logits]
    box_dim = rpn.anchor_generator.box_dim
    deltas = [d.view(d.shape[0], -1, box_dim, d.shape[-2], d.shape[-1]).permute(0, 3, 4, 1, 2).flatten(1, -2)
              for d in deltas]
    decoded = rpn._decode_proposals(anchors, deltas)
    pre_k, post_k = rpn.pre_nms_topk[False], rpn.post_nms_topk[False]
    proposals = find_top_rpn_proposals(decoded, logits, images.image_sizes, rpn.nms_thresh, pre_k, post_k,
                                       rpn.min_box_size, False)
    cap.rpn_levels, cap.pre_nms_topk, cap.post_nms_topk = list(rpn.in_features), pre_k, post_k
    cap.proposals_pre = _pre_nms(decoded, logits, images.image_sizes[0], pre_k, rpn.min_box_size, cap)
    post = _to_image(_np(proposals[0].proposal_boxes.tensor), cap)
    cap.proposals = Proposals(post, _np(proposals[0].objectness_logits), _levels_of(post, cap.proposals_pre))
    return proposals


def _pre_nms(decoded, logits, image_size, pre_k: int, min_size: float, cap: Capture) -> Proposals:
    """What goes into the RPN's NMS: each level's top-k, clipped, small boxes dropped."""
    import torch
    from detectron2.structures import Boxes

    boxes, scores, levels = [], [], []
    for lvl, (props, lg) in enumerate(zip(decoded, logits)):
        s, idx = lg[0].topk(min(lg.shape[1], pre_k))
        boxes.append(props[0][idx])
        scores.append(s)
        levels.append(torch.full((len(s),), lvl, dtype=torch.int64))
    b, s, lv = Boxes(torch.cat(boxes)), torch.cat(scores), torch.cat(levels)
    ok = torch.isfinite(b.tensor).all(dim=1) & torch.isfinite(s)
    b, s, lv = b[ok], s[ok], lv[ok]
    b.clip(image_size)
    ok = b.nonempty(threshold=min_size)
    b, s, lv = b[ok], s[ok], lv[ok]
    order = torch.argsort(s, descending=True, stable=True)
    return Proposals(_to_image(_np(b.tensor[order]), cap), _np(s[order]), lv[order].numpy())


def _levels_of(post: np.ndarray, pre: Proposals) -> np.ndarray:
    """The RPN level each post-NMS proposal came from: NMS keeps pre-NMS boxes bit for bit."""
    level = {b.tobytes(): lv for b, lv in zip(pre.boxes, pre.level)}
    return np.array([level.get(b.tobytes(), -1) for b in post], np.int64)


def _to_image(boxes_input: np.ndarray, cap: Capture) -> np.ndarray:
    sx, sy = cap.scale
    return (boxes_input * np.array([sx, sy, sx, sy], np.float32)).astype(np.float32)


def _run_roi_heads(rh, features, proposals, cap: Capture):
    from detectron2.modeling.poolers import ROIPooler
    from detectron2.modeling.roi_heads.roi_heads import StandardROIHeads

    box_pooler = getattr(rh, "box_pooler", None)
    if isinstance(box_pooler, ROIPooler):
        cap.box_pooler = _pooler_info(box_pooler, rh.box_in_features)
    mask_pooler = getattr(rh, "mask_pooler", None)
    if getattr(rh, "mask_on", False) and isinstance(mask_pooler, ROIPooler):
        cap.mask_pooler = _pooler_info(mask_pooler, rh.mask_in_features)
    if not (isinstance(rh, StandardROIHeads) and type(rh)._forward_box is StandardROIHeads._forward_box):
        # Cascade, Res5 (C4) and custom heads: run them whole; soft masks are still read before pasting.
        results, _ = rh(None, features, proposals)
        results[0].capture_index = _arange(len(results[0]))
        if results[0].has("pred_masks"):
            cap.mask_logits = _np(results[0].pred_masks[:, 0].clamp(1e-6, 1 - 1e-6).logit())
        return results
    # box branch: pooler -> head -> predictor; inference() also returns the proposal index of each detection
    feats = [features[f] for f in rh.box_in_features]
    box_features = rh.box_head(rh.box_pooler(feats, [p.proposal_boxes for p in proposals]))
    predictions = rh.box_predictor(box_features)
    results, kept = rh.box_predictor.inference(predictions, proposals)
    results[0].capture_index = _arange(len(results[0]))
    cap.instance_proposal = kept[0].cpu().numpy()
    if rh.mask_on:
        _run_mask_head(rh, features, results, cap)
    return rh._forward_keypoint(features, results)


def _arange(n: int):
    import torch

    return torch.arange(n)


def _run_mask_head(rh, features, results, cap: Capture) -> None:
    from detectron2.modeling.roi_heads.mask_head import BaseMaskRCNNHead, mask_rcnn_inference

    head = rh.mask_head
    if rh.mask_pooler is None or type(head).forward is not BaseMaskRCNNHead.forward:
        rh._forward_mask(features, results)
        cap.mask_logits = _np(results[0].pred_masks[:, 0].clamp(1e-6, 1 - 1e-6).logit())
        return
    x = rh.mask_pooler([features[f] for f in rh.mask_in_features], [r.pred_boxes for r in results])
    logits = head.layers(x)  # B x C x M x M (C = 1 when class-agnostic)
    classes = results[0].pred_classes
    chosen = logits[:, 0] if logits.shape[1] == 1 else logits[_arange(len(logits)).to(classes.device), classes]
    cap.mask_logits = _np(chosen)
    mask_rcnn_inference(logits, results)


def _postprocess(results, cap: Capture) -> None:
    from detectron2.modeling.postprocessing import detector_postprocess

    out = detector_postprocess(results[0], cap.image_size[0], cap.image_size[1]).to("cpu")
    keep = out.capture_index.numpy()
    out.remove("capture_index")
    cap.instances = out
    if cap.instance_proposal is not None:
        cap.instance_proposal = cap.instance_proposal[keep]
    if cap.mask_logits is not None:
        cap.mask_logits = cap.mask_logits[keep]


# --------------------------------------------------------------------------------------------
# per-instance / per-proposal views
# --------------------------------------------------------------------------------------------

def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def proposals_for_instance(cap: Capture, index: int, iou: float = 0.5) -> np.ndarray:
    """Indices of the post-NMS proposals that led to final instance ``index``, best first.

    These are the proposals overlapping the final box by IoU > ``iou`` (the box head scored and
    refined each of them; class-wise NMS kept one), plus the one the final box was refined from.
    """
    if cap.proposals is None or not (0 <= index < cap.num_instances):
        return np.zeros(0, np.int64)
    box = cap.instance_boxes()[index]
    hits = set(np.nonzero(box_iou(box, cap.proposals.boxes)[0] > iou)[0].tolist())
    if cap.instance_proposal is not None:
        hits.add(int(cap.instance_proposal[index]))
    return np.array(sorted(hits), np.int64)  # proposals are already sorted by objectness


def source_proposal(cap: Capture, index: int) -> int:
    """The proposal the final instance's box was regressed from (best IoU when the heads hide it)."""
    if cap.instance_proposal is not None:
        return int(cap.instance_proposal[index])
    return int(box_iou(cap.instance_boxes()[index], cap.proposals.boxes)[0].argmax())


def mask_view(cap: Capture, index: int) -> MaskView:
    if cap.mask_logits is None:
        raise BadInputError(cap.unavailable.get("mask", "the model has no mask head"))
    if not (0 <= index < cap.num_instances):
        raise BadInputError(f"instance {index} does not exist; the model found {cap.num_instances}")
    return MaskView(index, int(cap.instances.pred_classes[index]), cap.instance_boxes()[index].copy(),
                    cap.mask_logits[index])


def pasted_mask(cap: Capture, index: int, threshold: float = 0.5) -> np.ndarray:
    """The soft mask pasted into the image at ``threshold``, as the predictor does (0.5)."""
    import torch
    from detectron2.layers.mask_ops import paste_masks_in_image

    mv = mask_view(cap, index)
    probs = torch.as_tensor(mv.probs[None], dtype=torch.float32)
    out = paste_masks_in_image(probs, torch.as_tensor(mv.box[None]), cap.image_size, threshold=threshold)
    return out[0].numpy().astype(bool)


def roi_box(cap: Capture, source: str, index: int) -> np.ndarray:
    if source == "instance":
        if not (0 <= index < cap.num_instances):
            raise BadInputError(f"instance {index} does not exist; the model found {cap.num_instances}")
        return cap.instance_boxes()[index]
    if cap.proposals is None or not (0 <= index < len(cap.proposals)):
        raise BadInputError(f"proposal {index} does not exist")
    return cap.proposals.boxes[index]


def roi_view(cap: Capture, box_image: np.ndarray, pooler: str = "box") -> RoiView:
    """Pool ``box_image`` (xyxy, image pixels) as the model's box (7x7) or mask (14x14) pooler does."""
    import torch
    from detectron2.layers import ROIAlign
    from detectron2.modeling.poolers import assign_boxes_to_levels
    from detectron2.structures import Boxes
    from torchvision.ops import roi_pool

    info = cap.box_pooler if pooler == "box" else cap.mask_pooler
    if info is None:
        raise BadInputError(cap.unavailable.get("roi" if pooler == "box" else "mask", f"no {pooler} pooler"))
    sx, sy = cap.scale
    box_in = np.asarray(box_image, np.float64) / np.array([sx, sy, sx, sy])
    boxes = Boxes(torch.as_tensor(box_in[None], dtype=torch.float32))
    lvl = 0 if len(info.levels) == 1 else int(assign_boxes_to_levels(
        [boxes], info.min_level, info.max_level, info.canonical_box_size, info.canonical_level)[0])
    name, scale, S = info.levels[lvl], info.scales[lvl], info.output_size
    feat = torch.as_tensor(cap.fpn[name][None])
    rois = torch.cat([torch.zeros(1, 1), boxes.tensor], dim=1)
    align = ROIAlign((S, S), scale, info.sampling_ratio, aligned=info.aligned)(feat, rois)[0].numpy()
    pool = roi_pool(feat, rois, (S, S), scale)[0].numpy()

    # bin edges and bilinear sample points (torchvision's roi_align), in feature-index coordinates
    offset = 0.5 if info.aligned else 0.0
    x0, y0, x1, y1 = box_in * scale - offset
    w, h = x1 - x0, y1 - y0
    if not info.aligned:
        w, h = max(w, 1.0), max(h, 1.0)
    gy = info.sampling_ratio or max(math.ceil(h / S), 1)
    gx = info.sampling_ratio or max(math.ceil(w / S), 1)
    bins = np.arange(S + 1)
    xs = x0 + (np.arange(S * gx) + 0.5) * (w / S / gx)
    ys = y0 + (np.arange(S * gy) + 0.5) * (h / S / gy)
    # a feature cell k covers input pixels [k, k+1) * stride, so index c sits at (c + 0.5) / scale
    to_x = lambda c: (np.asarray(c) + 0.5) / scale * sx  # noqa: E731
    to_y = lambda c: (np.asarray(c) + 0.5) / scale * sy  # noqa: E731
    return RoiView(
        box=np.asarray(box_image, np.float32).copy(), level=name, stride=int(round(1 / scale)), output_size=S,
        grid=(gy, gx), aligned=info.aligned, align=align, pool=pool,
        bin_x=to_x(x0 + bins * w / S), bin_y=to_y(y0 + bins * h / S), sample_x=to_x(xs), sample_y=to_y(ys),
        pool_x=_pool_bins(box_in[0], box_in[2], scale, S, feat.shape[3]) / scale * sx,
        pool_y=_pool_bins(box_in[1], box_in[3], scale, S, feat.shape[2]) / scale * sy,
        cell=(sx / scale, sy / scale),
    )


def _pool_bins(start: float, end: float, scale: float, S: int, size: int) -> np.ndarray:
    """ROI Pool's integer bins [start, end) in feature cells (torchvision's roi_pool rounding)."""
    a = math.floor(start * scale + 0.5)  # not mask geometry: torchvision's rounding of ROI corners to cells
    b = math.floor(end * scale + 0.5)  # not mask geometry: the same
    n = max(b - a + 1, 1)
    k = np.arange(S)
    lo = np.clip(np.floor(k * n / S) + a, 0, size)
    hi = np.clip(np.ceil((k + 1) * n / S) + a, 0, size)
    return np.stack([lo, hi], 1).astype(np.float64)
