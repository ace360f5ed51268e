"""Pictures of a :class:`~maskreview.core.model.internals.Capture` (numpy + cv2, no Qt).

Every function returns an RGB uint8 image; the CLI writes them as PNGs (``explain``) and the
GUI's Model panel shows them. Views drawn over the image are scaled so the longer side is at
most ``max_side`` (:func:`display_scale`), with a caption bar below the picture, so a point of
the picture maps to the image by dividing by the scale.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from maskreview.core import masks as mk
from maskreview.core.model import internals as it
from maskreview.core.errors import BadInputError

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE, BLACK, GREEN, CYAN, YELLOW, ORANGE, MAGENTA = (
    (255, 255, 255), (0, 0, 0), (40, 220, 70), (0, 220, 255), (255, 230, 0), (255, 140, 0), (255, 0, 200))
FPN_MODES = ("mean", "max", "channel")


def colormap(values: np.ndarray, lo: float | None = None, hi: float | None = None,
             cmap: int = cv2.COLORMAP_VIRIDIS) -> np.ndarray:
    """A 2-D float array as RGB through a colour map, scaled to [lo, hi] (default: its range)."""
    v = np.asarray(values, np.float32)
    lo = float(np.nanmin(v)) if lo is None else lo
    hi = float(np.nanmax(v)) if hi is None else hi
    u8 = np.clip((v - lo) / (hi - lo if hi > lo else 1.0) * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, cmap), cv2.COLOR_BGR2RGB)


def display_scale(image_size: tuple[int, int], max_side: int, min_side: int = 512) -> float:
    """Scale for drawing: big images shrink to ``max_side``, small ones grow to ``min_side``."""
    side = max(image_size)
    if max_side and side > max_side:
        return max_side / side
    if min_side and side < min(min_side, max_side or min_side):
        return min(min_side, max_side or min_side) / side
    return 1.0


def _fit(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    f = display_scale(image.shape[:2], max_side)
    if f == 1.0:
        return image.copy(), f
    size = (max(1, round(image.shape[1] * f)), max(1, round(image.shape[0] * f)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR), f


def caption(image: np.ndarray, lines: list[str], scale: float = 0.45) -> np.ndarray:
    """``image`` with a black bar of text lines below it."""
    lines = [ln for ln in lines if ln]
    if not lines:
        return image
    step = int(22 * scale / 0.45)
    width = max(image.shape[1], max(cv2.getTextSize(ln, FONT, scale, 1)[0][0] for ln in lines) + 12)
    bar = np.zeros((step * len(lines) + 8, width, 3), np.uint8)
    for i, ln in enumerate(lines):
        cv2.putText(bar, ln, (6, step * (i + 1)), FONT, scale, WHITE, 1, cv2.LINE_AA)
    top = np.zeros((image.shape[0], width, 3), np.uint8)
    top[:, : image.shape[1]] = image
    return np.vstack([top, bar])


def label(image: np.ndarray, text: str, scale: float = 0.45) -> np.ndarray:
    """``image`` with a title above it."""
    (w, h), _ = cv2.getTextSize(text, FONT, scale, 1)
    bar = np.zeros((h + 12, max(image.shape[1], w + 8), 3), np.uint8)
    cv2.putText(bar, text, (4, h + 5), FONT, scale, WHITE, 1, cv2.LINE_AA)
    body = np.zeros((image.shape[0], bar.shape[1], 3), np.uint8)
    body[:, : image.shape[1]] = image
    return np.vstack([bar, body])


def hstack(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    h = max(im.shape[0] for im in images)
    parts = []
    for i, im in enumerate(images):
        pad = np.zeros((h, im.shape[1] + (gap if i else 0), 3), np.uint8)
        pad[: im.shape[0], (gap if i else 0):] = im
        parts.append(pad)
    return np.hstack(parts)


def vstack(images: list[np.ndarray]) -> np.ndarray:
    w = max(im.shape[1] for im in images)
    return np.vstack([np.pad(im, ((0, 0), (0, w - im.shape[1]), (0, 0))) for im in images])


def colorbar(width: int, lo: float, hi: float, title: str, cmap: int = cv2.COLORMAP_VIRIDIS) -> np.ndarray:
    right = cv2.getTextSize(f"{hi:.2g} {title}", FONT, 0.38, 1)[0][0] + 12
    bar = colormap(np.tile(np.linspace(0, 1, max(width - 64 - right, 20), dtype=np.float32), (12, 1)), 0, 1, cmap)
    out = np.zeros((16, max(width, 64 + bar.shape[1] + right), 3), np.uint8)
    out[2:14, 60: 60 + bar.shape[1]] = bar
    cv2.putText(out, f"{lo:.2g}", (2, 12), FONT, 0.38, WHITE, 1, cv2.LINE_AA)
    cv2.putText(out, f"{hi:.2g} {title}", (64 + bar.shape[1], 12), FONT, 0.38, WHITE, 1, cv2.LINE_AA)
    return out


# --------------------------------------------------------------------------------------------
# FPN
# --------------------------------------------------------------------------------------------

def fpn_values(cap: it.Capture, level: str, mode: str = "mean", channel: int = 0) -> np.ndarray:
    """The level's map reduced over channels (or one channel), cropped to the unpadded input."""
    fmap = cap.fpn[level]
    if mode == "mean":
        v = fmap.mean(0)
    elif mode == "max":
        v = fmap.max(0)
    else:
        v = fmap[int(np.clip(channel, 0, fmap.shape[0] - 1))]
    s = cap.strides[level]
    return v[: -(-cap.input_size[0] // s), : -(-cap.input_size[1] // s)]


def fpn_overlay(cap: it.Capture, image: np.ndarray, level: str, mode: str = "mean", channel: int = 0,
                alpha: float = 0.6, max_side: int = 768, min_side: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(the heatmap blended over the image, the values drawn); one colour block per feature cell."""
    f = display_scale(image.shape[:2], max_side, min_side)
    base, _ = _fit(image, max_side) if f <= 1 else (cv2.resize(
        image, (round(image.shape[1] * f), round(image.shape[0] * f)), interpolation=cv2.INTER_LINEAR), f)
    v = fpn_values(cap, level, mode, channel)
    s = cap.strides[level]
    sx, sy = cap.scale
    # a cell covers [k, k+1) * stride input pixels; the last row/column may run past the image
    full = (round(v.shape[1] * s * sx * f), round(v.shape[0] * s * sy * f))
    heat = cv2.resize(colormap(v), full, interpolation=cv2.INTER_NEAREST)[: base.shape[0], : base.shape[1]]
    return (base.astype(np.float32) * (1 - alpha) + heat.astype(np.float32) * alpha).astype(np.uint8), v


def fpn_view(cap: it.Capture, image: np.ndarray, level: str, mode: str = "mean", channel: int = 0,
             alpha: float = 0.6, max_side: int = 768) -> np.ndarray:
    out, v = fpn_overlay(cap, image, level, mode, channel, alpha, max_side)
    what = {"mean": "channel mean", "max": "channel max"}.get(mode, f"channel {int(channel)}")
    c, h, w = cap.fpn[level].shape
    lines = [f"{level}: stride {cap.strides[level]}, {w}x{h} cells x {c} channels ({what})",
             f"input {cap.input_size[1]}x{cap.input_size[0]} (image {cap.image_size[1]}x{cap.image_size[0]})"]
    if "fpn" in cap.unavailable:
        lines.append(cap.unavailable["fpn"])
    return vstack([caption(out, lines), colorbar(max(out.shape[1], 300), float(v.min()), float(v.max()), "")])


def fpn_levels_view(cap: it.Capture, image: np.ndarray, mode: str = "mean", size: int = 320) -> np.ndarray:
    """Every backbone level side by side at the same display size, each on its own colour scale."""
    tiles = []
    for name, fmap in cap.fpn.items():
        out, _ = fpn_overlay(cap, image, name, mode, alpha=0.75, max_side=size, min_side=size)
        tiles.append(label(out, f"{name}: stride {cap.strides[name]}, {fmap.shape[2]}x{fmap.shape[1]}"))
    what = {"mean": "channel mean", "max": "channel max"}.get(mode, mode)
    return caption(hstack(tiles), [f"backbone levels ({what}), input {cap.input_size[1]}x{cap.input_size[0]}"])


# --------------------------------------------------------------------------------------------
# RPN
# --------------------------------------------------------------------------------------------

def rpn_view(cap: it.Capture, image: np.ndarray, top_k: int = 50, instance: int | None = None,
             max_side: int = 768, classes: list[str] | None = None) -> np.ndarray:
    """The top-K post-NMS proposals coloured by objectness; with ``instance``, the proposals that led to it."""
    base, f = _fit(image, max_side)
    props = cap.proposals
    if props is None:
        return caption(base, ["RPN unavailable: " + cap.unavailable.get("rpn", "")])
    out = (base.astype(np.float32) * 0.6).astype(np.uint8)
    if instance is not None and 0 <= instance < cap.num_instances:
        idx = it.proposals_for_instance(cap, instance)
        src = it.source_proposal(cap, instance)
        lines = [f"instance {instance} ({_instance_name(cap, instance, classes)}): {len(idx)} proposals with IoU > 0.5",
                 f"white: final box; thick: proposal {src} its box was refined from"]
    else:
        idx = np.arange(min(top_k, len(props)))
        lines = [f"RPN: top {len(idx)} of {len(props)} proposals after NMS ({len(cap.proposals_pre)} before NMS)",
                 "coloured by objectness; best drawn on top"]
    scores = props.scores[idx]
    lo, hi = (float(scores.min()), float(scores.max())) if len(scores) else (0.0, 1.0)
    colors = colormap(scores[None, :], lo, hi, cv2.COLORMAP_JET)[0] if len(scores) else []
    for j in np.argsort(scores, kind="stable"):  # lowest first, the best ends on top
        x0, y0, x1, y1 = np.round(props.boxes[idx[j]] * f).astype(int)
        thick = 3 if instance is not None and idx[j] == it.source_proposal(cap, instance) else 1
        cv2.rectangle(out, (x0, y0), (x1, y1), tuple(int(c) for c in colors[j]), thick, cv2.LINE_AA)
    if instance is not None and 0 <= instance < cap.num_instances:
        x0, y0, x1, y1 = np.round(cap.instance_boxes()[instance] * f).astype(int)
        cv2.rectangle(out, (x0, y0), (x1, y1), WHITE, 2, cv2.LINE_AA)
    lines.append(f"objectness (sigmoid) {lo:.4f} .. {hi:.4f}, colours stretched over that range")
    return vstack([caption(out, lines), colorbar(max(out.shape[1], 300), lo, hi, "objectness", cv2.COLORMAP_JET)])


def _instance_name(cap: it.Capture, index: int, classes: list[str] | None = None) -> str:
    c = int(cap.instances.pred_classes[index])
    name = classes[c] if classes and c < len(classes) else f"class {c}"
    return f"{name} {float(cap.instances.scores[index]):.2f}"


# --------------------------------------------------------------------------------------------
# ROI Align vs ROI Pool
# --------------------------------------------------------------------------------------------

def _zoom_window(box: np.ndarray, image_size: tuple[int, int], margin: float = 0.25) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    mx, my = max((x1 - x0) * margin, 4), max((y1 - y0) * margin, 4)
    H, W = image_size
    return mk.pixel_window(x0 - mx, y0 - my, x1 + mx, y1 + my, H, W)


def roi_grid_view(cap: it.Capture, image: np.ndarray, rv: it.RoiView, size: int = 560) -> np.ndarray:
    """A zoom on the box: the feature-cell lattice, ROI Pool's snapped bins and ROI Align's samples."""
    X0, Y0, X1, Y1 = _zoom_window(rv.box, cap.image_size)
    crop = image[Y0:Y1, X0:X1]
    z = size / max(crop.shape[:2])
    out = cv2.resize(crop, (round(crop.shape[1] * z), round(crop.shape[0] * z)), interpolation=cv2.INTER_NEAREST)
    out = (out.astype(np.float32) * 0.55).astype(np.uint8)
    px = lambda x: int(round((x - X0) * z))  # noqa: E731
    py = lambda y: int(round((y - Y0) * z))  # noqa: E731
    h, w = out.shape[:2]
    cx, cy = rv.cell
    for k in range(int(X0 // cx), int(X1 // cx) + 2):  # feature cells of the level
        cv2.line(out, (px(k * cx), 0), (px(k * cx), h), (110, 110, 110), 1)
    for k in range(int(Y0 // cy), int(Y1 // cy) + 2):
        cv2.line(out, (0, py(k * cy)), (w, py(k * cy)), (110, 110, 110), 1)
    for (a, b) in rv.pool_x:  # ROI Pool's bins, snapped to whole cells
        for (c, d) in rv.pool_y:
            cv2.rectangle(out, (px(a) + 2, py(c) + 2), (px(b) - 2, py(d) - 2), ORANGE, 1)
    for x in rv.bin_x:  # ROI Align's bins, exact box coordinates
        cv2.line(out, (px(x), py(rv.bin_y[0])), (px(x), py(rv.bin_y[-1])), CYAN, 1, cv2.LINE_AA)
    for y in rv.bin_y:
        cv2.line(out, (px(rv.bin_x[0]), py(y)), (px(rv.bin_x[-1]), py(y)), CYAN, 1, cv2.LINE_AA)
    r = max(1, min(3, int(z * min(cx, cy) / max(rv.grid) / 6)))
    for y in rv.sample_y:
        for x in rv.sample_x:
            cv2.circle(out, (px(x), py(y)), r, YELLOW, -1, cv2.LINE_AA)
    S, (gy, gx) = rv.output_size, rv.grid
    return caption(out, [
        f"ROI Align on {rv.level} (stride {rv.stride}): {S}x{S} bins (cyan), {gy}x{gx} bilinear samples "
        f"per bin (yellow), aligned={rv.aligned}",
        "grey: feature cells; orange: ROI Pool's bins, box rounded to whole cells",
        f"box x {rv.box[0]:.1f}..{rv.box[2]:.1f}, y {rv.box[1]:.1f}..{rv.box[3]:.1f} (image px)",
    ])


def roi_compare_view(cap: it.Capture, rv: it.RoiView, channel: int | str = "auto", cell: int = 24) -> np.ndarray:
    """The level's cells under the box, then ROI Align's and ROI Pool's S x S outputs, side by side.

    ``channel``: a channel index, ``"mean"`` (mean over channels) or ``"auto"`` (the channel that
    varies most under the box, where bilinear sampling and max-pooling differ most visibly).
    """
    s = rv.stride
    sx, sy = cap.scale
    fmap = cap.fpn[rv.level]
    a0, b0 = int(rv.box[0] / sx // s), int(rv.box[1] / sy // s)
    a1, b1 = int(np.ceil(rv.box[2] / sx / s)), int(np.ceil(rv.box[3] / sy / s))
    cells = fmap[:, b0:max(b1, b0 + 1), a0:max(a1, a0 + 1)]
    if channel == "auto":
        channel = int(cells.reshape(len(cells), -1).std(1).argmax())
    if channel == "mean":
        pick, what = (lambda a: a.mean(0)), "channel mean"  # noqa: E731
    else:
        channel = int(np.clip(int(channel), 0, len(fmap) - 1))
        pick, what = (lambda a: a[channel]), f"channel {channel}"  # noqa: E731
    al, po, patch = pick(rv.align), pick(rv.pool), pick(cells)
    lo = float(min(al.min(), po.min(), patch.min()))
    hi = float(max(al.max(), po.max(), patch.max()))
    S = rv.output_size
    big = lambda v: cv2.resize(colormap(v, lo, hi), (S * cell, S * cell), interpolation=cv2.INTER_NEAREST)  # noqa: E731
    zp = S * cell / max(patch.shape)
    src = cv2.resize(colormap(patch, lo, hi), (max(1, round(patch.shape[1] * zp)), max(1, round(patch.shape[0] * zp))),
                     interpolation=cv2.INTER_NEAREST)
    tiles = [label(src, f"{rv.level} cells under the box ({patch.shape[1]}x{patch.shape[0]})"),
             label(big(al), f"ROI Align {S}x{S} (bilinear, averaged)"),
             label(big(po), f"ROI Pool {S}x{S} (snapped bins, max)")]
    row = hstack(tiles, gap=12)
    diff = float(np.abs(al - po).mean())
    return vstack([caption(row, [f"{what} of {len(fmap)}; one colour scale for all three; "
                                 f"mean |Align - Pool| = {diff:.3g}"]), colorbar(row.shape[1], lo, hi, "")])


# --------------------------------------------------------------------------------------------
# mask head
# --------------------------------------------------------------------------------------------

def _contour(out: np.ndarray, mask: np.ndarray, color, thick: int = 1) -> None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, color, thick, cv2.LINE_AA)


def best_gt(pred: np.ndarray, gt_masks: list[np.ndarray]) -> tuple[int, float]:
    ious = [mk.bitmap_iou(pred, g) for g in gt_masks]
    return (int(np.argmax(ious)), max(ious)) if ious else (-1, 0.0)


def mask_view(cap: it.Capture, image: np.ndarray, index: int, threshold: float = 0.5,
              gt_masks: list[np.ndarray] | None = None, classes: list[str] | None = None,
              size: int = 336) -> np.ndarray:
    """The soft M x M mask (with the threshold's contour), and the pasted mask vs GT in a zoom."""
    mv = it.mask_view(cap, index)
    probs = mv.probs
    M = probs.shape[0]
    z = size // M
    soft = cv2.resize(colormap(probs, 0.0, 1.0, cv2.COLORMAP_INFERNO), (M * z, M * z), interpolation=cv2.INTER_NEAREST)
    up = cv2.resize(probs, (M * z, M * z), interpolation=cv2.INTER_NEAREST) >= threshold
    _contour(soft, up, CYAN, 1)
    pasted = it.pasted_mask(cap, index, threshold)
    X0, Y0, X1, Y1 = _zoom_window(mv.box, cap.image_size, 0.15)
    crop = image[Y0:Y1, X0:X1].astype(np.float32)
    m = pasted[Y0:Y1, X0:X1]
    crop[m] = crop[m] * 0.5 + np.array(MAGENTA, np.float32) * 0.5
    zz = size / max(crop.shape[:2])
    dsize = (max(1, round(crop.shape[1] * zz)), max(1, round(crop.shape[0] * zz)))
    zoom = cv2.resize(crop.astype(np.uint8), dsize, interpolation=cv2.INTER_NEAREST)
    _contour(zoom, cv2.resize(m.astype(np.uint8), dsize, interpolation=cv2.INTER_NEAREST), MAGENTA, 2)
    gt_line = "no ground truth given"
    if gt_masks:
        g, iou = best_gt(pasted, gt_masks)
        gm = cv2.resize(gt_masks[g][Y0:Y1, X0:X1].astype(np.uint8), dsize, interpolation=cv2.INTER_NEAREST)
        _contour(zoom, gm, GREEN, 2)
        gt_line = f"green: ground truth {g}, mask IoU {iou:.3f}"
    row = hstack([label(soft, f"mask head output {M}x{M}, sigmoid (cyan: >= {threshold:.2f})"),
                  label(zoom, f"pasted at {threshold:.2f} (magenta), {int(pasted.sum())} px")], gap=12)
    return vstack([caption(row, [f"instance {index}: {_instance_name(cap, index, classes)}, "
                                    f"box ({', '.join(f'{v:.1f}' for v in mv.box)})", gt_line]),
                      colorbar(row.shape[1], 0.0, 1.0, "mask probability", cv2.COLORMAP_INFERNO)])


def unavailable_view(message: str, width: int = 480) -> np.ndarray:
    return caption(np.zeros((8, width, 3), np.uint8), [message[i:i + 80] for i in range(0, len(message), 80)])


# --------------------------------------------------------------------------------------------
# all views as PNG files (maskreview explain)
# --------------------------------------------------------------------------------------------

def write_png(path, rgb: np.ndarray) -> None:

    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise BadInputError(f"{path}: cannot write the PNG")


def explain(cap: it.Capture, image: np.ndarray, out_dir, level: str = "p3", top_k: int = 50,
            instance: int = 0, proposal: int | None = None, classes: list[str] | None = None,
            gt_masks: list[np.ndarray] | None = None) -> list:
    """Write one PNG per view into ``out_dir``; returns the paths written."""


    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if level not in cap.fpn:
        raise BadInputError(f"level {level!r} is not in this backbone; choose one of {', '.join(cap.fpn)}")
    views = {f"fpn_{level}.png": fpn_view(cap, image, level),
             f"fpn_{level}_max.png": fpn_view(cap, image, level, "max"),
             "fpn_levels.png": fpn_levels_view(cap, image)}
    has_instance = 0 <= instance < cap.num_instances
    if cap.proposals is not None:
        views["rpn_topk.png"] = rpn_view(cap, image, top_k)
        if has_instance:
            views[f"rpn_instance_{instance}.png"] = rpn_view(cap, image, top_k, instance=instance, classes=classes)
    if cap.box_pooler is not None and cap.proposals is not None and len(cap.proposals):
        p = proposal if proposal is not None else (it.source_proposal(cap, instance) if has_instance else 0)
        rv = it.roi_view(cap, it.roi_box(cap, "proposal", p))
        views["roi_align_grid.png"] = label(roi_grid_view(cap, image, rv), f"proposal {p} "
                                            f"(objectness {cap.proposals.scores[p]:.3f}, rank {p + 1})")
        views["roi_align_vs_pool.png"] = roi_compare_view(cap, rv)
    if cap.mask_logits is not None and has_instance:
        views["mask_head.png"] = mask_view(cap, image, instance, gt_masks=gt_masks, classes=classes)
    paths = []
    for name, rgb in views.items():
        write_png(out / name, rgb)
        paths.append(out / name)
    return paths
