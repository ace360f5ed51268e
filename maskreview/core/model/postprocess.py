"""A model's output as box-local masks and raw label documents, never as full-image masks.

detectron2's ``detector_postprocess`` pastes every predicted mask into a full-image bitmap
(``paste_masks_in_image``), which :mod:`~maskreview.core.model.engine` then cropped back to the
box. A dataset run does neither: :func:`raw_instances` runs the model without its paste (the
boxes still rescaled, clipped and filtered by detectron2's own ``detector_postprocess``), and
:func:`paste_box_masks` pastes each mask into its box's own window only, with the same
arithmetic as detectron2 (the same grid over the same pixel centres, ``grid_sample`` with
``align_corners=False``, thresholded at 0.5), so every pixel is the one detectron2 would give
(``tests/test_inference.py`` compares them on random boxes, image edges and sub-pixel boxes
included). :func:`detection_docs` turns them into the label documents FiftyOne stores, without
building ``fo.Detection`` objects.
"""

from __future__ import annotations

import numpy as np
from bson import ObjectId

from maskreview.core import masks as mk
from maskreview.core.store.codec import encode_mask

MASK_FIELD = "maskreview_roi_masks"  # the M x M mask probabilities, carried through detector_postprocess
# a batch of windows is padded to its largest; a new batch starts when the padding would more
# than double the pixels sampled
PAD_WASTE = 2.0


def box_windows(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Each box's paste window ``(x0, y0, x1, y1)`` (end exclusive), as detectron2's CPU paste
    takes it (``_do_paste_mask`` with ``skip_empty``, one box at a time): the box's whole pixels
    widened by one on each side, clipped to the image. No pixel outside it can be set."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = np.empty((len(boxes), 4), np.int64)
    out[:, 0] = np.maximum(np.floor(boxes[:, 0]) - 1, 0)
    out[:, 1] = np.maximum(np.floor(boxes[:, 1]) - 1, 0)
    out[:, 2] = np.minimum(np.ceil(boxes[:, 2]) + 1, width)
    out[:, 3] = np.minimum(np.ceil(boxes[:, 3]) + 1, height)
    return out


def _batches(sizes: np.ndarray) -> list[np.ndarray]:
    """Indices grouped so that padding each group to its largest window stays cheap."""
    order = np.lexsort((sizes[:, 1], sizes[:, 0]))[::-1]  # tallest first
    groups, current, hmax, wmax, area = [], [], 0, 0, 0
    for i in order:
        h, w = int(sizes[i, 0]), int(sizes[i, 1])
        nh, nw = max(hmax, h), max(wmax, w)
        if current and nh * nw * (len(current) + 1) > PAD_WASTE * (area + h * w) + 1024:
            groups.append(np.array(current))
            current, nh, nw, area = [], h, w, 0
        current.append(i)
        hmax, wmax, area = nh, nw, area + h * w
    if current:
        groups.append(np.array(current))
    return groups


def paste_box_masks(masks, boxes, height: int, width: int, threshold: float = 0.5) -> list[tuple[int, int, np.ndarray]]:
    """``(x0, y0, bitmap)`` per mask: the ``M x M`` mask probabilities ``masks`` (N, M, M) pasted
    into their XYXY ``boxes`` (N, 4, image pixels) and thresholded, each only over its window
    (:func:`box_windows`); every pixel as ``paste_masks_in_image`` sets it in the full image."""
    import torch
    from torch.nn import functional as F

    n = len(masks)
    if n == 0:
        return []
    boxes = boxes if isinstance(boxes, torch.Tensor) else torch.as_tensor(boxes)
    windows = box_windows(boxes.detach().cpu().numpy(), height, width)
    sizes = np.stack([windows[:, 3] - windows[:, 1], windows[:, 2] - windows[:, 0]], axis=1)
    out: list = [None] * n
    masks = masks if masks.dtype.is_floating_point else masks.float()
    for idx in _batches(sizes):
        sel = torch.as_tensor(idx)
        hmax, wmax = int(sizes[idx, 0].max()), int(sizes[idx, 1].max())
        x0, y0, x1, y1 = torch.split(boxes[sel], 1, dim=1)  # each (k, 1)
        start = torch.as_tensor(windows[idx, :2], dtype=torch.float32, device=boxes.device)
        # detectron2: arange(x0_int, x1_int) + 0.5; the same whole numbers, then the same operations
        img_x = (torch.arange(wmax, device=boxes.device, dtype=torch.float32)[None, :] + start[:, :1]) + 0.5
        img_y = (torch.arange(hmax, device=boxes.device, dtype=torch.float32)[None, :] + start[:, 1:]) + 0.5
        img_x = (img_x - x0) / (x1 - x0) * 2 - 1
        img_y = (img_y - y0) / (y1 - y0) * 2 - 1
        k = len(idx)
        gx = img_x[:, None, :].expand(k, hmax, wmax)
        gy = img_y[:, :, None].expand(k, hmax, wmax)
        grid = torch.stack([gx, gy], dim=3)
        chunk = masks[sel][:, None]
        pasted = F.grid_sample(chunk, grid.to(chunk.dtype), align_corners=False)[:, 0] >= threshold
        pasted = pasted.cpu().numpy()
        for j, i in enumerate(idx):
            h, w = sizes[i]
            out[i] = (int(windows[i, 0]), int(windows[i, 1]), pasted[j, :h, :w])
    return out


def raw_instances(model, inputs: list[dict]) -> list:
    """The model's ``Instances`` per input at the input's ``height`` x ``width``, as detectron2's
    ``GeneralizedRCNN`` returns them (boxes rescaled, clipped, empty ones dropped by
    ``detector_postprocess``) except the masks: ``MASK_FIELD`` holds each mask's ``M x M``
    probabilities, not pasted."""
    from detectron2.modeling.postprocessing import detector_postprocess

    results = model.inference(inputs, do_postprocess=False)
    out = []
    for result, inp in zip(results, inputs):
        if result.has("pred_masks"):
            result.set(MASK_FIELD, result.pred_masks[:, 0])
            result.remove("pred_masks")
        height = inp.get("height", result.image_size[0])
        width = inp.get("width", result.image_size[1])
        out.append(detector_postprocess(result, height, width).to("cpu"))
    return out


def box_local(region: np.ndarray, rx0: int, ry0: int, box, height: int, width: int) -> tuple[list[float], np.ndarray]:
    """A mask (``region``, placed at ``(rx0, ry0)``; nothing set outside it) and its predicted
    XYXY box as FiftyOne's relative ``bounding_box`` and box mask.

    The box stays the model's; the mask is cropped to where ``masks.detection_to_bitmap``
    pastes it back (the box's rounded top-left), so the round trip is exact. detectron2 pastes
    masks inside their boxes; if some pixels lie outside anyway, the box grows to hold them."""
    x0, y0, x1, y1 = (float(v) for v in box)
    rel = [x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height]
    px0, py0 = mk.round_half_up(rel[0] * width), mk.round_half_up(rel[1] * height)
    px1 = max(px0 + 1, mk.round_half_up((rel[0] + rel[2]) * width))
    py1 = max(py0 + 1, mk.round_half_up((rel[1] + rel[3]) * height))
    tight = mk.mask_bbox(region)
    if tight is not None:
        tx, ty, tw, th = tight
        tx, ty = tx + rx0, ty + ry0
        if tx < px0 or ty < py0 or tx + tw > px1 or ty + th > py1:
            px0, py0 = min(px0, tx), min(py0, ty)
            px1, py1 = max(px1, tx + tw), max(py1, ty + th)
            rel = [px0 / width, py0 / height, (px1 - px0) / width, (py1 - py0) / height]
    return rel, mk.crop(region, px0 - rx0, py0 - ry0, px1 - px0, py1 - py0)


def detection_docs(instances, classes) -> list[dict]:
    """Raw ``Detection`` documents (as ``fo.Detection(...).to_mongo()`` has them) for
    :func:`raw_instances`' output: box-local masks when the model has masks."""
    height, width = instances.image_size
    boxes = instances.pred_boxes.tensor.numpy()
    scores = instances.scores.numpy()
    labels = instances.pred_classes.numpy()
    placed = (paste_box_masks(instances.get(MASK_FIELD), instances.pred_boxes.tensor, height, width)
              if instances.has(MASK_FIELD) else None)
    docs = []
    for i in range(len(instances)):
        doc = {"_id": ObjectId(), "_cls": "Detection", "attributes": {}, "tags": [],
               "label": classes[int(labels[i])]}
        if placed is None:
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            doc["bounding_box"] = [x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height]
        else:
            doc["bounding_box"], mask = box_local(placed[i][2], placed[i][0], placed[i][1], boxes[i], height, width)
            doc["mask"] = encode_mask(mask)
        doc["confidence"] = float(scores[i])
        docs.append(doc)
    return docs
