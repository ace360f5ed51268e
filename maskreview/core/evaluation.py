"""COCO-style evaluation of a predictions field against a ground-truth field (pycocotools).

The dataset is turned into the exact inputs pycocotools expects (GT as a ``COCO`` object with
RLE segmentations, predictions in COCO's results format), and ``COCOeval`` does the rest, so
the numbers are pycocotools' own.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import numpy as np

from maskreview.core import masks as mk
from maskreview.core.errors import BadInputError

STAT_NAMES = ("mAP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


@dataclass
class CocoInputs:
    gt: dict  # a COCO instances dict
    results: list[dict]  # COCO results format
    sample_ids: list[str] = field(default_factory=list)  # image id i+1 <-> sample_ids[i]


def _annotation(det, height: int, width: int, iou_type: str) -> dict:
    if iou_type == "segm" or det.mask is not None:
        rle = mk.detection_to_rle(det, height, width)
    if iou_type == "segm":
        from pycocotools import mask as mask_utils

        return {"segmentation": mk.rle_to_json(rle), "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)]}
    x, y, w, h = det.bounding_box
    bbox = [x * width, y * height, w * width, h * height]
    return {"bbox": bbox, "area": float(bbox[2] * bbox[3])}


def coco_inputs(view, gt_field: str, pred_field: str, iou_type: str = "segm", classes: list[str] | None = None) -> CocoInputs:
    """GT and results for pycocotools from two ``Detections`` fields of a view."""
    if iou_type not in ("segm", "bbox"):
        raise BadInputError(f"{iou_type}: iou type must be segm or bbox")
    ids, metas, gts, preds = view.values(["id", "metadata", gt_field, pred_field])
    labels = set()
    for dets in (*gts, *preds):
        if dets is not None:
            labels.update(d.label for d in dets.detections)
    names = list(classes or view._dataset.default_classes or [])
    names += sorted(labels - set(names))
    cat_id = {name: i + 1 for i, name in enumerate(names)}
    images, annotations, results = [], [], []
    for index, (sid, meta, gt, pred) in enumerate(zip(ids, metas, gts, preds)):
        if meta is None or not meta.width or not meta.height:
            raise BadInputError(f"sample {sid} has no image size (metadata); run compute_metadata() first")
        height, width = int(meta.height), int(meta.width)
        image_id = index + 1
        images.append({"id": image_id, "width": width, "height": height})
        for det in (gt.detections if gt is not None else []):
            ann = _annotation(det, height, width, iou_type)
            ann.update(id=len(annotations) + 1, image_id=image_id, category_id=cat_id[det.label],
                       iscrowd=int(bool(det["iscrowd"])) if det.has_field("iscrowd") and det["iscrowd"] else 0)
            annotations.append(ann)
        for det in (pred.detections if pred is not None else []):
            res = _annotation(det, height, width, iou_type)
            res.pop("area", None)
            if iou_type == "segm":
                res.pop("bbox", None)
            res.update(image_id=image_id, category_id=cat_id[det.label],
                       score=float(det.confidence if det.confidence is not None else 1.0))
            results.append(res)
    gt_dict = {"images": images, "annotations": annotations,
               "categories": [{"id": i, "name": n} for n, i in cat_id.items()]}
    return CocoInputs(gt_dict, results, list(ids))


def run_cocoeval(gt: dict, results: list[dict], iou_type: str = "segm"):
    """pycocotools' COCOeval on in-memory GT and results, quietly; returns the evaluator."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results) if results else COCO()
        if not results:
            coco_dt.dataset = {"images": gt["images"], "annotations": [], "categories": gt["categories"]}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def per_class_ap(evaluator) -> dict[str, float]:
    """AP@[.5:.95] per category, area 'all', maxDets 100 (-1 where a class has no GT)."""
    precision = evaluator.eval["precision"]  # [T, R, K, A, M]
    out = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        p = precision[:, :, k, 0, -1]
        valid = p[p > -1]
        out[evaluator.cocoGt.cats[cat_id]["name"]] = float(valid.mean()) if valid.size else -1.0
    return out


def summary(evaluator) -> dict:
    stats = {name: float(v) for name, v in zip(STAT_NAMES, evaluator.stats)}
    stats["per_class"] = per_class_ap(evaluator)
    return stats


def evaluate(view, gt_field: str = "ground_truth", pred_field: str = "predictions", iou_type: str = "segm") -> dict:
    """mAP and friends for ``pred_field`` against ``gt_field`` over a view."""
    inputs = coco_inputs(view, gt_field, pred_field, iou_type)
    return summary(run_cocoeval(inputs.gt, inputs.results, iou_type))
