"""Model-assisted correction: masks proposed by the reviewer's own detector and by edge snapping.

- :meth:`MaskAssist.box_to_mask`: a box drawn by the reviewer goes through the detector's own
  ROI heads. The box head classifies it (unless the reviewer names the class), then
  ``roi_heads.forward_with_given_boxes`` runs the mask head on exactly that box and
  detectron2's ``detector_postprocess`` pastes the mask into the image, as for the model's own
  detections. Refining a label is the same call on the label's (corrected) box with its class.
  The backbone's features are kept for the last image, so further boxes on it cost only the
  heads.
- :func:`grabcut_refine`: OpenCV's GrabCut seeded from a mask and its box: the mask's eroded
  core is sure foreground, the rest of the mask probable foreground, the rest of the box
  probable background, a margin around the box sure background.
- :func:`scissors_polygon`: OpenCV's intelligent scissors (``IntelligentScissorsMB``) between
  consecutive vertices of a polygon, so its edges follow the image's edges; filled to a mask.

Everything takes and returns numpy arrays (RGB ``uint8`` images, full-image ``bool`` masks,
``(x0, y0, x1, y1)`` pixel boxes), so it runs the same in a worker process. Results are
:class:`Proposal` objects: the GUI shows one and the reviewer accepts (one undoable edit) or
drops it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from maskreview.core.errors import BadInputError
from maskreview.core.masks import mask_bbox, pixel_window


@dataclass
class Proposal:
    kind: str  # "box" | "refine" | "grabcut" | "scissors"
    bitmap: np.ndarray  # full-image bool mask
    label: str | None = None  # the class (box head's, or the one given)
    score: float | None = None  # the box head's probability of that class
    box: tuple[float, float, float, float] | None = None  # the box it came from (x0, y0, x1, y1)
    seconds: float = 0.0

    @property
    def empty(self) -> bool:
        return not self.bitmap.any()


def _check_box(box, height: int, width: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    x0, y0 = max(x0, 0.0), max(y0, 0.0)
    x1, y1 = min(x1, float(width)), min(y1, float(height))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise BadInputError(f"box {tuple(round(v, 1) for v in box)} is less than 2 pixels wide inside the image")
    return x0, y0, x1, y1


class MaskAssist:
    """Box -> mask through a loaded :class:`~maskreview.core.model.engine.Engine`'s ROI heads."""

    def __init__(self, engine):
        if not engine.has_masks:
            raise BadInputError(f"{engine.spec.name}: the model has no mask head (MODEL.MASK_ON is off)")
        if not hasattr(engine.model, "roi_heads"):
            raise BadInputError(f"{engine.spec.name}: box -> mask needs a two-stage model with ROI heads")
        self.engine = engine
        self._cached: tuple | None = None  # (key, features, resized size, original size)

    def _features(self, image_rgb: np.ndarray, key=None):
        key = key if key is not None else (image_rgb.shape, image_rgb.__array_interface__["data"][0],
                                           int(image_rgb[::97, ::89].sum()))
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1:]
        model = self.engine.model
        images = model.preprocess_image([self.engine.prepare(image_rgb)])
        features = model.backbone(images.tensor)
        self._cached = (key, features, tuple(images.image_sizes[0]), image_rgb.shape[:2])
        return self._cached[1:]

    def box_to_mask(self, image_rgb: np.ndarray, box, label: str | None = None, image_key=None,
                    kind: str = "box") -> Proposal:
        """The mask head's mask for ``box`` (image pixels, x0 y0 x1 y1); the class is ``label``
        when the model knows it, else the box head's best foreground class for the box."""
        import torch
        from detectron2.modeling.postprocessing import detector_postprocess
        from detectron2.structures import Boxes, Instances

        start = time.perf_counter()
        height, width = image_rgb.shape[:2]
        x0, y0, x1, y1 = _check_box(box, height, width)
        classes = list(self.engine.classes)
        with torch.inference_mode():
            features, (rh, rw), _ = self._features(image_rgb, image_key)
            sx, sy = rw / width, rh / height
            device = next(iter(features.values())).device
            boxes = Boxes(torch.tensor([[x0 * sx, y0 * sy, x1 * sx, y1 * sy]], dtype=torch.float32, device=device))
            heads = self.engine.model.roi_heads
            pooled = heads.box_pooler([features[f] for f in heads.box_in_features], [boxes])
            logits, _ = heads.box_predictor(heads.box_head(pooled))
            probs = torch.softmax(logits, dim=-1)[0, :-1]  # the last column is background
            cls = classes.index(label) if label in classes else int(torch.argmax(probs))
            instances = Instances((rh, rw))
            instances.pred_boxes = boxes
            instances.pred_classes = torch.tensor([cls], device=device)
            instances.scores = probs[cls:cls + 1]
            out = heads.forward_with_given_boxes(features, [instances])[0]
            out = detector_postprocess(out, height, width)
        bitmap = out.pred_masks[0].cpu().numpy().astype(bool) if len(out) else np.zeros((height, width), bool)
        return Proposal(kind, bitmap, label if label is not None else classes[cls], float(probs[cls]),
                        (x0, y0, x1, y1), time.perf_counter() - start)

    def refine(self, image_rgb: np.ndarray, bitmap: np.ndarray, label: str | None = None, box=None,
               image_key=None) -> Proposal:
        """The mask head again on a label's box (its mask's tight box unless ``box`` corrects it)."""
        if box is None:
            box = tight_box(bitmap)
            if box is None:
                raise BadInputError("the label has no pixels to refine")
        return self.box_to_mask(image_rgb, box, label, image_key, kind="refine")


def tight_box(bitmap: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of a mask's pixels (exclusive end), None when empty."""

    b = mask_bbox(bitmap)
    return None if b is None else (b[0], b[1], b[0] + b[2], b[1] + b[3])


def _crop(box, margin: int, height: int, width: int) -> tuple[int, int, int, int]:
    return pixel_window(*box, height, width, margin=margin)


def grabcut_refine(image_rgb: np.ndarray, bitmap: np.ndarray, box=None, iterations: int = 4,
                   margin: float = 0.15, max_side: int = 480) -> Proposal:
    """GrabCut seeded from ``bitmap`` and its box (``box`` overrides the mask's tight box).

    Runs on a crop around the box with ``margin`` (a fraction of the box size, at least 8 px)
    of sure background, so the cost follows the object, not the image. A crop longer than
    ``max_side`` is cut at that size and the result scaled back (GrabCut's cost grows with the
    pixels: a 1080p object would take over half a second).
    """
    import cv2

    start = time.perf_counter()
    height, width = bitmap.shape
    if image_rgb.shape[:2] != bitmap.shape:
        raise BadInputError(f"mask of shape {bitmap.shape} does not match the image {image_rgb.shape[:2]}")
    box = box if box is not None else tight_box(bitmap)
    if box is None:
        raise BadInputError("GrabCut needs a mask or a box to start from")
    x0, y0, x1, y1 = _check_box(box, height, width)
    pad = max(8, int(margin * max(x1 - x0, y1 - y0)))
    cx0, cy0, cx1, cy1 = _crop((x0, y0, x1, y1), pad, height, width)
    seed = bitmap[cy0:cy1, cx0:cx1]
    gc = np.full(seed.shape, cv2.GC_BGD, np.uint8)
    bx0, by0 = int(np.floor(x0)) - cx0, int(np.floor(y0)) - cy0
    bx1, by1 = int(np.ceil(x1)) - cx0, int(np.ceil(y1)) - cy0
    gc[by0:by1, bx0:bx1] = cv2.GC_PR_BGD
    gc[seed] = cv2.GC_PR_FGD
    k = max(3, int(0.15 * min(x1 - x0, y1 - y0)) | 1)  # the mask's core is taken as certain
    core = cv2.erode(seed.astype(np.uint8), np.ones((k, k), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    gc[core.astype(bool)] = cv2.GC_FGD
    crop = np.ascontiguousarray(image_rgb[cy0:cy1, cx0:cx1, ::-1])  # OpenCV wants BGR
    if not (gc == cv2.GC_PR_FGD).any() and not (gc == cv2.GC_FGD).any():
        gc[by0:by1, bx0:bx1] = cv2.GC_PR_FGD  # a box alone: everything in it may be the object
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    scale = min(1.0, max_side / max(crop.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        small = cv2.resize(gc, size, interpolation=cv2.INTER_NEAREST)
        cv2.grabCut(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), small, None, bgd, fgd, iterations,
                    cv2.GC_INIT_WITH_MASK)
        fg = ((small == cv2.GC_FGD) | (small == cv2.GC_PR_FGD)).astype(np.float32)
        fg = cv2.resize(fg, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR) >= 0.5
    else:
        cv2.grabCut(crop, gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    out = np.zeros((height, width), bool)
    out[cy0:cy1, cx0:cx1] = fg
    return Proposal("grabcut", out, box=(x0, y0, x1, y1), seconds=time.perf_counter() - start)


def scissors_path(image_rgb: np.ndarray, points, margin: int = 24, closed: bool = True) -> np.ndarray:
    """The polygon through ``points`` (image pixels) with each edge replaced by the intelligent
    scissors' path between its two vertices: ``(N, 2)`` integer ``x, y`` points."""
    import cv2

    pts = np.asarray(points, float).reshape(-1, 2)
    if len(pts) < 2:
        raise BadInputError("intelligent scissors need at least two points")
    height, width = image_rgb.shape[:2]
    pts[:, 0] = np.clip(pts[:, 0], 0, width - 1)
    pts[:, 1] = np.clip(pts[:, 1], 0, height - 1)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    cx0, cy0, cx1, cy1 = _crop((x0, y0, x1 + 1, y1 + 1), margin, height, width)
    crop = np.ascontiguousarray(image_rgb[cy0:cy1, cx0:cx1, ::-1])
    tool = cv2.segmentation.IntelligentScissorsMB()
    tool.setEdgeFeatureCannyParameters(32, 100)
    tool.setGradientMagnitudeMaxLimit(200)
    tool.applyImage(crop)
    local = np.round(pts - (cx0, cy0)).astype(int)
    pairs = list(zip(local, np.roll(local, -1, axis=0))) if closed else list(zip(local[:-1], local[1:]))
    path = []
    for a, b in pairs:
        tool.buildMap((int(a[0]), int(a[1])))
        contour = tool.getContour((int(b[0]), int(b[1])))  # from b back to a
        path.append(contour.reshape(-1, 2)[::-1])
    return np.concatenate(path) + (cx0, cy0)


def scissors_polygon(image_rgb: np.ndarray, points, margin: int = 24) -> Proposal:
    """A mask from a polygon whose edges snap to image edges (:func:`scissors_path`)."""
    import cv2

    start = time.perf_counter()
    if len(np.asarray(points).reshape(-1, 2)) < 3:
        raise BadInputError("a polygon needs at least 3 points")
    path = scissors_path(image_rgb, points, margin)
    height, width = image_rgb.shape[:2]
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillPoly(canvas, [path.astype(np.int32).reshape(-1, 1, 2)], 1)
    box = tuple(float(v) for v in (*path.min(axis=0), *(path.max(axis=0) + 1)))
    return Proposal("scissors", canvas.astype(bool), box=box, seconds=time.perf_counter() - start)


def propose_mask(engine, image_rgb: np.ndarray, box, label: str | None = None, image_key=None,
                 kind: str = "box") -> Proposal:
    """Box -> mask (``kind="refine"``: the same on a label's corrected box) with one
    :class:`MaskAssist` per engine, kept on the engine so an image's features are reused."""
    assist = getattr(engine, "_mask_assist", None)
    if assist is None:
        assist = engine._mask_assist = MaskAssist(engine)
    return assist.box_to_mask(image_rgb, box, label, image_key=image_key, kind=kind)


def warm(engine, image_rgb: np.ndarray, image_key=None) -> None:
    """Compute an image's features ahead of the reviewer's first box (the backbone is most of
    the first box's time)."""
    assist = getattr(engine, "_mask_assist", None)
    if assist is None:
        assist = engine._mask_assist = MaskAssist(engine)
    import torch

    with torch.inference_mode():
        assist._features(image_rgb, image_key)
