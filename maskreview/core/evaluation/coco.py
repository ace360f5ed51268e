"""COCO's own numbers: dataset fields (or COCO files) -> pycocotools inputs -> ``COCOeval``.

The dataset is turned into exactly what pycocotools expects (GT as a ``COCO`` object with RLE
segmentations, predictions in COCO's results format) and ``COCOeval`` does the rest, so the
numbers are pycocotools' own. Definitions used to build the GT: ``area`` is the mask's pixel
count when the instance has a mask (also for ``bbox`` evaluation, as in COCO), else the box
area; ``iscrowd`` comes from the label's ``iscrowd`` attribute.

Odd inputs follow COCO: results whose category is not a GT category are ignored by COCOeval
(we report them in ``warnings``); a class with no GT instance gets AP -1 and is left out of the
mean, so its detections cost nothing. Results on image ids that are not in the GT are an error.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maskreview.core import cocofile, masks as mk
from maskreview.core.errors import BadInputError
from maskreview.core.fields import GT_FIELD, PRED_FIELD
from maskreview.core.store import dataset_of, fiftyone
from maskreview.core.evaluation import engine
from maskreview.core.evaluation.columns import CocoColumns
from maskreview.core.evaluation.encoding import (  # noqa: F401  (re-exported: coco.box_mask, ...)
    box_mask,
    detection_rle,
    encode_masks,
    rle_areas,
)
from maskreview.core.evaluation.reading import read_detections
from maskreview.core.images import check_pixels

STAT_NAMES = ("mAP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = ("segm", "bbox")
BUILD_PIECE = 50_000  # labels whose COCO annotations are made between two progress updates


@dataclass
class CocoInputs:
    gt: dict  # a COCO instances dict (RLE counts as bytes; json-ready via mk.rle_to_json)
    results: list[dict]  # COCO results format; result i gets annotation id i + 1 in loadRes
    sample_ids: list[str] = field(default_factory=list)  # image id i + 1 <-> sample_ids[i]
    gt_label_ids: list[str] = field(default_factory=list)  # annotation id a + 1 <-> gt_label_ids[a]
    pred_label_ids: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    gt_masks: list = field(default_factory=list)  # (x0, y0, box mask) per annotation (a box fills a mask-less one)
    pred_masks: list = field(default_factory=list)
    sample_versions: list = field(default_factory=list)  # each sample's last_modified_at as read
    samples: object = None  # reading.Samples: the cache entries of the samples read
    # as_columns: the annotations and the results as columns (gt holds images and categories only, results is None)
    gt_columns: CocoColumns | None = None
    result_columns: CocoColumns | None = None


def _check_iou_type(iou_type: str) -> None:
    if iou_type not in IOU_TYPES:
        raise BadInputError(f"{iou_type}: iou type must be segm or bbox")


def check_fields(view, gt_field: str, pred_field: str) -> None:
    """Both fields exist and hold ``Detections``; a clear error otherwise."""

    fo = fiftyone()
    schema = view.get_field_schema()
    for role, name in (("ground-truth", gt_field), ("prediction", pred_field)):
        if name not in schema:
            label_fields = [k for k, v in schema.items() if isinstance(v, fo.EmbeddedDocumentField)
                            and issubclass(v.document_type, fo.Detections)]
            raise BadInputError(f"{dataset_of(view).name}: no {role} field {name!r} "
                                f"(Detections fields: {', '.join(label_fields) or 'none'})")
        ftype = schema[name]
        doc = getattr(ftype, "document_type", None)
        if not (isinstance(ftype, fo.EmbeddedDocumentField) and doc is not None and issubclass(doc, fo.Detections)):
            kind = doc.__name__ if doc is not None else type(ftype).__name__
            raise BadInputError(f"{role} field {name!r} holds {kind}, not Detections (instance masks or boxes)")
    if gt_field == pred_field:
        raise BadInputError(f"ground truth and predictions are the same field {gt_field!r}")


def coco_inputs(view, gt_field: str, pred_field: str, iou_type: str = "segm",
                classes: list[str] | None = None, encode: bool = True, cache=None,
                stored_key: str | None = None, progress=None, as_columns: bool = False) -> CocoInputs:
    """GT and results for pycocotools from two ``Detections`` fields of a view.

    ``encode=False`` (segm): the masks are not yet turned into RLE segmentations (nor the GT's
    ``area`` and ``bbox`` computed); :func:`encode_masks` does it, e.g. per shard in a worker.
    ``cache`` (:mod:`cache`): reuse the labels of samples unchanged since the last run;
    ``stored_key``: read what is stored under this eval key too (``reading.read_detections``);
    ``progress``: read in batches, with progress and Cancel between them;
    ``as_columns``: the annotations and results as :class:`columns.CocoColumns` (``gt_columns``,
    ``result_columns``; segm: no area nor box yet), no dict a label.
    """
    _check_iou_type(iou_type)
    check_fields(view, gt_field, pred_field)
    samples, (gt, pred) = read_detections(view, [gt_field, pred_field], cache, stored_key, progress)
    ids, heights, widths = samples.ids, samples.heights, samples.widths
    if not ids:
        raise BadInputError(f"{dataset_of(view).name}: no samples to evaluate")
    if not (heights.all() and widths.all()):
        sid = ids[int(np.flatnonzero((heights == 0) | (widths == 0))[0])]
        raise BadInputError(f"sample {sid} has no image size (metadata); run compute_metadata() first")
    if len(gt) == 0:
        raise BadInputError(f"ground-truth field {gt_field!r} has no instances in these {len(ids)} samples")
    if len(pred) == 0:
        raise BadInputError(f"prediction field {pred_field!r} has no detections in these {len(ids)} samples; "
                            "run inference first (maskreview infer)")
    gt_labels, pred_labels = set(gt.labels), set(pred.labels)
    names = list(classes or view.default_classes or [])
    names += sorted((gt_labels | pred_labels) - set(names))
    cat_id = {name: i + 1 for i, name in enumerate(names)}
    warnings = []
    absent = sorted(pred_labels - gt_labels)
    if absent:
        warnings.append(f"classes predicted but absent from {gt_field!r}: {', '.join(absent)}; "
                        "COCO gives them AP -1 and leaves them out of mAP")
    if iou_type == "segm":
        for role, dets in (("ground truth", gt), ("prediction", pred)):
            missing = [i for i, m in enumerate(dets.masks) if m is None]
            if missing:
                raise BadInputError(f"{len(missing)} instances have no mask (first: a {role} in sample "
                                    f"{ids[dets.img[missing[0]]]}); mask evaluation needs masks, use --iou-type bbox")

    images = [{"id": i + 1, "width": w, "height": h} for i, (h, w) in enumerate(zip(heights.tolist(), widths.tolist()))]
    scores = np.where(np.isnan(pred.scores), 1.0, pred.scores)
    gt_columns = CocoColumns(gt.img.astype(np.int64) + 1, _category_ids(gt.labels, cat_id),
                             iscrowd=np.asarray(gt.crowd, bool).reshape(-1))
    pred_columns = CocoColumns(pred.img.astype(np.int64) + 1, _category_ids(pred.labels, cat_id), score=scores)
    gt_masks, pred_masks = gt.placed(heights, widths), pred.placed(heights, widths)
    if iou_type == "bbox":
        gt_columns.bbox, pred_columns.bbox = gt.pixel_boxes(heights, widths), pred.pixel_boxes(heights, widths)
        # area: the mask's pixels inside the image, as for segm; a mask-less box's own area
        gt_columns.area = gt_columns.bbox[:, 2] * gt_columns.bbox[:, 3]
        with_mask = [j for j, m in enumerate(gt.masks) if m is not None]
        gt_columns.area[with_mask] = rle_areas(mk.paste_rles(
            [gt_masks[j] for j in with_mask], heights[gt.img[with_mask]], widths[gt.img[with_mask]]))
    categories = [{"id": i, "name": n} for n, i in cat_id.items()]
    if as_columns:
        return CocoInputs({"images": images, "categories": categories}, None, ids, gt.ids, pred.ids, warnings,
                          gt_masks, pred_masks, samples.versions, samples, gt_columns, pred_columns)
    annotations, results = [], []
    pieces = [(gt_columns, annotations, a) for a in range(0, len(gt), BUILD_PIECE)] + \
        [(pred_columns, results, d) for d in range(0, len(pred), BUILD_PIECE)]
    if progress is not None:  # (1,000,000 labels: seconds of CPU in one go, a wait with no progress)
        progress.total = max(progress.total, progress.done + len(pieces) + 1)
    for columns, dicts, a in pieces:  # BUILD_PIECE labels at a time, progress and Cancel between
        dicts += columns.dicts(slice(a, a + BUILD_PIECE))
        if progress is not None:
            progress.advance()
            progress.check()
    if iou_type == "segm" and encode:
        encode_masks(images, annotations, results, gt_masks, pred_masks)
    return CocoInputs({"images": images, "annotations": annotations, "categories": categories}, results, ids,
                      gt.ids, pred.ids, warnings, gt_masks, pred_masks, samples.versions, samples)


def _category_ids(labels: list[str], cat_id: dict[str, int]) -> np.ndarray:
    return np.array([cat_id[label] for label in labels], np.int64).reshape(-1)


def to_json_files(inputs: CocoInputs, gt_path, results_path) -> None:
    """Write the inputs as plain COCO files (RLE counts as strings)."""
    def jsonable(items):
        out = []
        for item in items:
            item = dict(item)
            if isinstance(item.get("segmentation"), dict):
                item["segmentation"] = mk.rle_to_json(item["segmentation"])
            out.append(item)
        return out

    Path(gt_path).write_text(json.dumps({**inputs.gt, "annotations": jsonable(inputs.gt["annotations"])}))
    Path(results_path).write_text(json.dumps(jsonable(inputs.results)))


def run_cocoeval(gt: dict, results: list[dict], iou_type: str = "segm"):
    """COCOeval on in-memory GT and results (:mod:`engine`), accumulated; returns the evaluator."""
    _check_iou_type(iou_type)
    if not results:
        raise BadInputError("there are no detections to evaluate")
    return engine.accumulate(engine.evaluate(gt, results, iou_type))


def per_class_ap(evaluator, iou: float | None = None) -> dict[str, float]:
    """AP per category (area 'all', maxDets 100) over IoU .5:.95, or at one IoU; -1 without GT."""
    precision = evaluator.eval["precision"]  # [T, R, K, A, M]
    if iou is not None:
        t = int(np.argmin(np.abs(evaluator.params.iouThrs - iou)))
        precision = precision[t : t + 1]
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


def evaluate(view, gt_field: str = GT_FIELD, pred_field: str = PRED_FIELD, iou_type: str = "segm") -> dict:
    """mAP and friends for ``pred_field`` against ``gt_field`` over a view (nothing stored)."""
    inputs = coco_inputs(view, gt_field, pred_field, iou_type)
    out = summary(run_cocoeval(inputs.gt, inputs.results, iou_type))
    out["warnings"] = inputs.warnings
    return out


# ------------------------------------------------------------------------------- plain COCO files

def evaluate_files(gt_path, results_path, iou_type: str = "segm") -> dict:
    """COCOeval on a COCO instances JSON and a COCO results JSON, as pycocotools would run it.

    Both files are checked first (``core.cocofile``): a structural problem is one line naming
    the file and the entry, never pycocotools' traceback.
    """
    from pycocotools.coco import COCO


    _check_iou_type(iou_type)
    gt_data = cocofile.load_json(gt_path, "ground-truth")
    results = cocofile.load_json(results_path, "results")
    if not isinstance(gt_data, dict) or not isinstance(gt_data.get("images"), list) \
            or not isinstance(gt_data.get("annotations"), list):
        raise BadInputError(f"{gt_path}: not a COCO instances file (needs 'images' and 'annotations' lists)")
    checked = cocofile.check_instances(gt_data, gt_path, need_file_names=False, need_sizes=iou_type == "segm")
    gt = _clean_gt(checked, gt_path, iou_type)  # the GT first: results are checked against its sizes
    results, stray_cats = cocofile.check_results(results, results_path, checked, iou_type, gt_path)
    if not gt["annotations"]:
        raise BadInputError(f"{gt_path}: no ground-truth annotations to evaluate against")
    warnings = []
    if stray_cats:
        warnings.append(f"{results_path}: category ids {sorted(stray_cats)} are not in {gt_path}; "
                        "COCOeval ignores those detections")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
    try:
        out = summary(_evaluate_coco(coco_gt, results, iou_type))
    except (KeyError, TypeError, ValueError, IndexError, AssertionError) as exc:
        raise BadInputError(f"{gt_path} / {results_path}: pycocotools could not evaluate them ({exc!r})") from exc
    out["warnings"] = warnings
    return out


def _clean_gt(checked, gt_path, iou_type: str) -> dict:
    """The checked GT as pycocotools wants it: RLE segmentations, every annotation with its
    area, box and iscrowd (computed COCO's way where the file leaves them out), ids renumbered."""
    from pycocotools import mask as mask_utils


    images = [{k: im[k] for k in ("id", "width", "height", "file_name") if k in im} for im in checked.images.values()]
    annotations = []
    for image_id, anns in checked.annotations.items():
        im = checked.images[image_id]
        if "width" in im:  # the masks COCOeval makes are this big
            check_pixels(im["width"], im["height"], checked.where_image(gt_path, image_id))
        for index, ann in anns:
            entry = {"id": len(annotations) + 1, "image_id": image_id, "category_id": ann["category_id"],
                     "iscrowd": int(ann.get("iscrowd", 0))}
            seg = ann.get("segmentation")
            rle = None
            if seg not in (None, []) and "width" in im:
                try:
                    rle = mk.coco_to_rle(seg, im["height"], im["width"])
                except mk.MaskError as exc:
                    raise BadInputError(f"{cocofile.where_annotation(gt_path, index, ann)}: {exc}") from exc
                entry["segmentation"] = mk.rle_to_json(rle)
            if ann.get("bbox") is not None:
                entry["bbox"] = [float(v) for v in ann["bbox"]]
            elif rle is not None:
                entry["bbox"] = [float(v) for v in mask_utils.toBbox(rle)]
            else:
                raise BadInputError(f"{cocofile.where_annotation(gt_path, index, ann)}: has no bbox and no "
                                    "segmentation usable here (the image has no width and height)")
            if "area" in ann:
                entry["area"] = float(ann["area"])
            else:
                entry["area"] = float(mask_utils.area(rle)) if rle is not None else entry["bbox"][2] * entry["bbox"][3]
            if iou_type == "segm" and rle is None:  # COCOeval would turn the box into a polygon
                x, y, w, h = entry["bbox"]
                entry["segmentation"] = [[x, y, x, y + h, x + w, y + h, x + w, y]]
            annotations.append(entry)
    return {"images": images, "annotations": annotations, "categories": checked.category_entries}


def _evaluate_coco(coco_gt, results: list, iou_type: str):
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator
