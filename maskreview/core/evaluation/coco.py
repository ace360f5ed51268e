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
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maskreview.core import masks as mk
from maskreview.core.errors import BadInputError

STAT_NAMES = ("mAP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = ("segm", "bbox")


@dataclass
class CocoInputs:
    gt: dict  # a COCO instances dict (RLE counts as bytes; json-ready via mk.rle_to_json)
    results: list[dict]  # COCO results format; result i gets annotation id i + 1 in loadRes
    sample_ids: list[str] = field(default_factory=list)  # image id i + 1 <-> sample_ids[i]
    gt_label_ids: list[str] = field(default_factory=list)  # annotation id a + 1 <-> gt_label_ids[a]
    pred_label_ids: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    gt_masks: list = field(default_factory=list)  # segm: (x0, y0, box mask) per annotation
    pred_masks: list = field(default_factory=list)


def _check_iou_type(iou_type: str) -> None:
    if iou_type not in IOU_TYPES:
        raise BadInputError(f"{iou_type}: iou type must be segm or bbox")


def check_fields(view, gt_field: str, pred_field: str) -> None:
    """Both fields exist and hold ``Detections``; a clear error otherwise."""
    from maskreview.core.store import fiftyone

    fo = fiftyone()
    schema = view.get_field_schema()
    for role, name in (("ground-truth", gt_field), ("prediction", pred_field)):
        if name not in schema:
            label_fields = [k for k, v in schema.items() if isinstance(v, fo.EmbeddedDocumentField)
                            and issubclass(v.document_type, fo.Detections)]
            raise BadInputError(f"{view._dataset.name}: no {role} field {name!r} "
                                f"(Detections fields: {', '.join(label_fields) or 'none'})")
        ftype = schema[name]
        doc = getattr(ftype, "document_type", None)
        if not (isinstance(ftype, fo.EmbeddedDocumentField) and doc is not None and issubclass(doc, fo.Detections)):
            kind = doc.__name__ if doc is not None else type(ftype).__name__
            raise BadInputError(f"{role} field {name!r} holds {kind}, not Detections (instance masks or boxes)")
    if gt_field == pred_field:
        raise BadInputError(f"ground truth and predictions are the same field {gt_field!r}")


class RawDet:
    """A detection read raw from the database (30x faster than FiftyOne's documents)."""

    __slots__ = ("id", "label", "bounding_box", "mask", "confidence", "iscrowd")

    def __init__(self, id, label, bounding_box, mask, confidence, iscrowd):
        self.id, self.label, self.bounding_box, self.mask = id, label, bounding_box, mask
        self.confidence, self.iscrowd = confidence, iscrowd


_NPY_HEADER = re.compile(rb"'descr':\s*'([^']+)',\s*'fortran_order':\s*(True|False),\s*'shape':\s*\(([^)]*)\)")


_DTYPES: dict[bytes, np.dtype] = {}


def decode_mask(raw: bytes) -> np.ndarray:
    """A mask as FiftyOne stores it (zlib-compressed .npy bytes), without ``np.load``'s overhead."""
    data = zlib.decompress(raw)
    if data[6:8] == b"\x01\x00":
        hlen, start = int.from_bytes(data[8:10], "little"), 10
        m = _NPY_HEADER.search(data[start:start + hlen])
        if m:
            shape = tuple(int(v) for v in m.group(3).split(b",") if v.strip())
            dtype = _DTYPES.get(m.group(1)) or _DTYPES.setdefault(m.group(1), np.dtype(m.group(1).decode()))
            arr = np.frombuffer(data, dtype=dtype, offset=start + hlen)
            return arr.reshape(shape, order="F" if m.group(2) == b"True" else "C")
    with io.BytesIO(data) as f:
        return np.load(f, allow_pickle=False)


def read_detections(view, fields: list[str]):
    """Sample ids, ``(height, width)`` and lists of :class:`RawDet` per sample for each field."""
    paths = ["_id", "metadata.height", "metadata.width"]
    attrs = ("_id", "label", "bounding_box", "mask", "confidence", "iscrowd", "mask_path")
    for f in fields:
        paths += [f"{f}.detections.{a}" for a in attrs]
    values = view.values(paths, _raw=True)
    ids = [str(v) for v in values[0]]
    sizes = list(zip(values[1], values[2]))
    out = []
    for j in range(len(fields)):
        cols = values[3 + j * len(attrs): 3 + (j + 1) * len(attrs)]
        per_sample = []
        for dids, labels, boxes, masks, confs, crowds, mpaths in zip(*cols):
            dets = []
            for k in range(len(dids or [])):
                mask = masks[k] if masks else None
                if mask is not None:
                    mask = decode_mask(mask)
                elif mpaths and mpaths[k]:
                    from maskreview.core.store import fiftyone

                    mask = fiftyone().Detection(mask_path=mpaths[k]).get_mask()
                dets.append(RawDet(str(dids[k]), labels[k], boxes[k], mask,
                                   confs[k] if confs else None, bool(crowds[k]) if crowds and crowds[k] else False))
            per_sample.append(dets)
        out.append(per_sample)
    return ids, sizes, out


def box_mask_rle(mask: np.ndarray, x0: int, y0: int, height: int, width: int) -> dict:
    """COCO RLE of a box mask pasted at ``(x0, y0)`` (clipped), equal to encoding the pasted bitmap.

    Only the image columns the box spans are touched, which is several times faster than
    pasting into a full image and encoding it.
    """
    from pycocotools import mask as mask_utils

    mh, mw = mask.shape[:2]
    xs, ys, xe, ye = max(x0, 0), max(y0, 0), min(x0 + mw, width), min(y0 + mh, height)
    if xe <= xs or ye <= ys:
        trans = np.zeros(0, np.int64)
    else:
        span = np.zeros((xe - xs, height), np.int8)  # image columns, Fortran order like COCO's RLE
        span[:, ys:ye] = np.asarray(mask[ys - y0:ye - y0, xs - x0:xe - x0], dtype=bool).T
        flat = span.ravel()
        offset = xs * height
        trans = np.flatnonzero(flat[1:] != flat[:-1]) + 1 + offset
        if flat[0]:
            trans = np.concatenate(([offset], trans))
        if flat[-1]:
            trans = np.concatenate((trans, [offset + flat.size]))
    counts = np.diff(np.concatenate(([0], trans, [height * width])))
    if len(counts) > 1 and counts[-1] == 0:
        counts = counts[:-1]
    return mask_utils.frPyObjects({"size": [height, width], "counts": counts.tolist()}, height, width)


def box_mask(det, height: int, width: int) -> tuple[int, int, np.ndarray]:
    """``(x0, y0, mask)``: a detection's mask and where it is pasted (a mask-less box fills its box)."""
    x0, y0, w, h = mk.detection_pixel_box(det, height, width)
    mask = det.mask if det.mask is not None else np.ones((h, w), bool)
    return x0, y0, np.asarray(mask, dtype=bool)


def detection_rle(det, height: int, width: int) -> dict:
    """A detection's full-image RLE (same as ``masks.detection_to_rle``, faster)."""
    x0, y0, mask = box_mask(det, height, width)
    return box_mask_rle(mask, x0, y0, height, width)


def _geometry(det, height: int, width: int, iou_type: str):
    """``(RLE, None, (x0, y0, box mask))`` for segm, ``(None, [x, y, w, h] pixels, None)`` for bbox."""
    if iou_type == "segm":
        x0, y0, mask = box_mask(det, height, width)
        return box_mask_rle(mask, x0, y0, height, width), None, (x0, y0, mask)
    x, y, w, h = det.bounding_box
    return None, [x * width, y * height, w * width, h * height], None


def coco_inputs(view, gt_field: str, pred_field: str, iou_type: str = "segm",
                classes: list[str] | None = None) -> CocoInputs:
    """GT and results for pycocotools from two ``Detections`` fields of a view."""
    from pycocotools import mask as mask_utils

    _check_iou_type(iou_type)
    check_fields(view, gt_field, pred_field)
    ids, sizes, (gts, preds) = read_detections(view, [gt_field, pred_field])
    if not ids:
        raise BadInputError(f"{view._dataset.name}: no samples to evaluate")
    gt_labels = {d.label for dets in gts for d in dets}
    pred_labels = {d.label for dets in preds for d in dets}
    n_gt, n_pred = sum(map(len, gts)), sum(map(len, preds))
    if n_gt == 0:
        raise BadInputError(f"ground-truth field {gt_field!r} has no instances in these {len(ids)} samples")
    if n_pred == 0:
        raise BadInputError(f"prediction field {pred_field!r} has no detections in these {len(ids)} samples; "
                            "run inference first (maskreview infer)")
    names = list(classes or view._dataset.default_classes or [])
    names += sorted((gt_labels | pred_labels) - set(names))
    cat_id = {name: i + 1 for i, name in enumerate(names)}
    warnings = []
    absent = sorted(pred_labels - gt_labels)
    if absent:
        warnings.append(f"classes predicted but absent from {gt_field!r}: {', '.join(absent)}; "
                        "COCO gives them AP -1 and leaves them out of mAP")

    images, annotations, results = [], [], []
    gt_label_ids, pred_label_ids = [], []
    gt_masks, pred_masks = [], []
    missing_masks = []
    for index, (sid, (height, width), gt, pred) in enumerate(zip(ids, sizes, gts, preds)):
        if not width or not height:
            raise BadInputError(f"sample {sid} has no image size (metadata); run compute_metadata() first")
        height, width = int(height), int(width)
        image_id = index + 1
        images.append({"id": image_id, "width": width, "height": height})
        for det in gt:
            if iou_type == "segm" and det.mask is None:
                missing_masks.append(("ground truth", sid))
            rle, box, crop = _geometry(det, height, width, iou_type)
            gt_masks.append(crop)
            ann = {"id": len(annotations) + 1, "image_id": image_id, "category_id": cat_id[det.label],
                   "iscrowd": int(det.iscrowd)}
            if rle is not None:
                ann["segmentation"] = rle
            else:
                ann["bbox"] = box
                ann["area"] = (float(mk.detection_area(det, height, width)) if det.mask is not None
                               else float(box[2] * box[3]))
            annotations.append(ann)
            gt_label_ids.append(det.id)
        for det in pred:
            if iou_type == "segm" and det.mask is None:
                missing_masks.append(("prediction", sid))
            rle, box, crop = _geometry(det, height, width, iou_type)
            pred_masks.append(crop)
            res = {"image_id": image_id, "category_id": cat_id[det.label],
                   "score": float(det.confidence if det.confidence is not None else 1.0)}
            res["segmentation" if rle is not None else "bbox"] = rle if rle is not None else box
            results.append(res)
            pred_label_ids.append(det.id)
    if missing_masks:
        role, sid = missing_masks[0]
        raise BadInputError(f"{len(missing_masks)} instances have no mask (first: a {role} in sample {sid}); "
                            "mask evaluation needs masks, use --iou-type bbox")
    if iou_type == "segm":  # area and bbox of GT masks, batched
        rles = [a["segmentation"] for a in annotations]
        if rles:
            areas, boxes = rle_areas(rles), mask_utils.toBbox(rles)
            for ann, area, box in zip(annotations, areas, boxes):
                ann["area"], ann["bbox"] = float(area), [float(v) for v in box]
    gt_dict = {"images": images, "annotations": annotations,
               "categories": [{"id": i, "name": n} for n, i in cat_id.items()]}
    return CocoInputs(gt_dict, results, list(ids), gt_label_ids, pred_label_ids, warnings, gt_masks, pred_masks)


def rle_areas(rles: list) -> np.ndarray:
    """``mask_utils.area`` over a list (pycocotools 2.0.11 overflows past 255 RLEs in one call)."""
    from pycocotools import mask as mask_utils

    return np.concatenate([np.asarray(mask_utils.area(rles[i:i + 255]), dtype=float).reshape(-1)
                           for i in range(0, len(rles), 255)]) if rles else np.zeros(0)


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
    """pycocotools' COCOeval on in-memory GT and results, quietly; returns the evaluator."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    _check_iou_type(iou_type)
    if not results:
        raise BadInputError("there are no detections to evaluate")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


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


def evaluate(view, gt_field: str = "ground_truth", pred_field: str = "predictions", iou_type: str = "segm") -> dict:
    """mAP and friends for ``pred_field`` against ``gt_field`` over a view (nothing stored)."""
    inputs = coco_inputs(view, gt_field, pred_field, iou_type)
    out = summary(run_cocoeval(inputs.gt, inputs.results, iou_type))
    out["warnings"] = inputs.warnings
    return out


# ------------------------------------------------------------------------------- plain COCO files

def _load_json(path, what: str):
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: {what} file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: not valid JSON ({exc})") from exc


def evaluate_files(gt_path, results_path, iou_type: str = "segm") -> dict:
    """COCOeval on a COCO instances JSON and a COCO results JSON, as pycocotools would run it."""
    from pycocotools.coco import COCO

    _check_iou_type(iou_type)
    gt = _load_json(gt_path, "ground-truth")
    results = _load_json(results_path, "results")
    if not isinstance(gt, dict) or not isinstance(gt.get("images"), list) or not isinstance(gt.get("annotations"), list):
        raise BadInputError(f"{gt_path}: not a COCO instances file (needs 'images' and 'annotations' lists)")
    if isinstance(results, dict) and isinstance(results.get("annotations"), list):
        raise BadInputError(f"{results_path}: looks like a COCO instances file; --pred takes COCO results "
                            "(a list of {image_id, category_id, segmentation|bbox, score})")
    if not isinstance(results, list):
        raise BadInputError(f"{results_path}: COCO results must be a JSON list")
    if not results:
        raise BadInputError(f"{results_path}: no detections to evaluate")
    gt.setdefault("categories", [])
    key = "segmentation" if iou_type == "segm" else "bbox"
    image_ids = {im.get("id") for im in gt["images"] if isinstance(im, dict)}
    cat_ids = {c.get("id") for c in gt["categories"] if isinstance(c, dict)}
    stray_images, stray_cats = set(), set()
    for i, res in enumerate(results):
        if not isinstance(res, dict) or key not in res or "score" not in res or "image_id" not in res \
                or "category_id" not in res:
            raise BadInputError(f"{results_path}: result {i} lacks image_id, category_id, {key} or score "
                                f"(for --iou-type {iou_type})")
        if res["image_id"] not in image_ids:
            stray_images.add(res["image_id"])
        if res["category_id"] not in cat_ids:
            stray_cats.add(res["category_id"])
    if stray_images:
        first = sorted(stray_images, key=str)[:5]
        raise BadInputError(f"{results_path}: {len(stray_images)} image ids are not in {gt_path} "
                            f"(e.g. {', '.join(map(str, first))}); results must refer to GT images")
    if not gt["annotations"]:
        raise BadInputError(f"{gt_path}: no ground-truth annotations to evaluate against")
    warnings = []
    if stray_cats:
        warnings.append(f"{results_path}: category ids {sorted(stray_cats, key=str)} are not in {gt_path}; "
                        "COCOeval ignores those detections")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        try:
            coco_gt.createIndex()
        except (KeyError, TypeError) as exc:
            raise BadInputError(f"{gt_path}: malformed COCO instances file ({exc!r})") from exc
    try:
        out = summary(_evaluate_coco(coco_gt, results, iou_type))
    except (KeyError, TypeError, ValueError, IndexError, AssertionError) as exc:
        raise BadInputError(f"{gt_path} / {results_path}: pycocotools could not evaluate them ({exc!r})") from exc
    out["warnings"] = warnings
    return out


def _evaluate_coco(coco_gt, results: list, iou_type: str):
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator
