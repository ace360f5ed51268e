"""The Model panel's pictures, drawn where the model lives (the worker process), sent back as arrays.

:func:`render` draws one tab of the panel from a :class:`~maskreview.core.model.internals.Capture`
with the tab's controls; :func:`summary` is what the panel needs to set its controls (levels,
channel and instance counts, instance boxes for clicks), as plain data without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from maskreview.core.errors import MaskreviewError
from maskreview.core.model import internals as it
from maskreview.core.model import internals_render as rr

MAX_SIDE = 768
TABS = ("FPN", "RPN", "ROI Align", "Mask head")


@dataclass
class CaptureSummary:
    image_size: tuple[int, int]
    meta_architecture: str
    fpn_levels: list[str]
    fpn_channels: int
    num_instances: int
    num_proposals: int | None  # None: the model has no RPN
    instance_boxes: np.ndarray  # N x 4 xyxy, image pixels
    instance_proposal: np.ndarray  # for each instance, the proposal its box was refined from
    unavailable: dict[str, str] = field(default_factory=dict)

    def message(self) -> str:
        if not self.unavailable:
            return ""
        return "; ".join(f"{view} view unavailable: {why}" for view, why in self.unavailable.items())


def summary(cap: it.Capture) -> CaptureSummary:
    n = cap.num_instances
    sources = np.array([it.source_proposal(cap, i) for i in range(n)], np.int64) \
        if cap.proposals is not None and len(cap.proposals) else np.zeros(n, np.int64)
    return CaptureSummary(tuple(cap.image_size), cap.meta_architecture, list(cap.fpn),
                          len(next(iter(cap.fpn.values()))), n, None if cap.proposals is None else len(cap.proposals),
                          cap.instance_boxes().copy(), sources, dict(cap.unavailable))


def pack_masks(masks: list[np.ndarray] | None):
    """Bitmaps as (shape, packed bits): 8x less to send."""
    return None if masks is None else [(m.shape, np.packbits(m.astype(bool), axis=None)) for m in masks]


def unpack_masks(packed):
    if packed is None:
        return None
    return [np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).astype(bool) for shape, bits in packed]


def render(cap: it.Capture, image: np.ndarray, tab: str, controls: dict, classes=None,
           gt_masks: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The picture(s) of ``tab`` (two for ROI Align); a view that cannot be drawn says why."""
    try:
        if tab == "FPN":
            return [rr.fpn_view(cap, image, controls["level"], controls.get("mode", "mean"),
                                controls.get("channel", 0), max_side=MAX_SIDE)]
        if tab == "RPN":
            if cap.proposals is None:
                return [rr.unavailable_view(cap.message())]
            k = controls.get("instance", -1)
            return [rr.rpn_view(cap, image, controls.get("top_k", 50), instance=k if k >= 0 else None,
                                max_side=MAX_SIDE, classes=classes)]
        if tab == "ROI Align":
            return _roi(cap, image, controls)
        return [_mask(cap, image, controls, classes, gt_masks)]
    except MaskreviewError as exc:
        return [rr.unavailable_view(str(exc))] + ([np.zeros((1, 1, 3), np.uint8)] if tab == "ROI Align" else [])


def _roi(cap: it.Capture, image: np.ndarray, controls: dict) -> list[np.ndarray]:
    if cap.box_pooler is None or (cap.proposals is None and not cap.num_instances):
        return [rr.unavailable_view(cap.unavailable.get("roi", "no ROI pooler")), np.zeros((1, 1, 3), np.uint8)]
    source = "instance" if controls.get("source") == "instance" or cap.proposals is None else "proposal"
    n = cap.num_instances if source == "instance" else len(cap.proposals)
    index = min(controls.get("index", 0), max(n - 1, 0))
    pooler = "mask" if controls.get("pooler") == "mask" and cap.mask_pooler is not None else "box"
    rv = it.roi_view(cap, it.roi_box(cap, source, index), pooler)
    ch = controls.get("channel", -2)
    channel = "auto" if ch == -2 else ("mean" if ch == -1 else ch)
    title = f"{source} {index}" + (f" (objectness {cap.proposals.scores[index]:.3f})" if source == "proposal" else "")
    return [rr.label(rr.roi_grid_view(cap, image, rv), title), rr.roi_compare_view(cap, rv, channel)]


def _mask(cap: it.Capture, image: np.ndarray, controls: dict, classes, gt_masks) -> np.ndarray:
    if cap.mask_logits is None or not cap.num_instances:
        return rr.unavailable_view(cap.unavailable.get("mask", "the model found no instance in this image"))
    return rr.mask_view(cap, image, controls.get("instance", 0), controls.get("threshold", 0.5),
                        gt_masks=gt_masks, classes=classes)
