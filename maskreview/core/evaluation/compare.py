"""Two models side by side, per ground-truth instance: which one found it, how well, which class.

:func:`compare_fields` evaluates two prediction fields against the same ground truth with
pycocotools (``evaluation.results.compute``; nothing is stored, no eval key is written) and
puts the figures side by side (mAP, AP50, AP75, AP per class). Then, per GT instance (crowd
GTs left out):

- *found* by a model: COCOeval matched one of its predictions to the GT at ``iou_thresh``
  (same class); ``status`` is ``both``, ``a_only``, ``b_only`` or ``neither``;
- the model's label for the GT: the matched prediction, or else its prediction of any class
  overlapping the GT most (IoU >= ``iou_thresh``), with that IoU; ``iou_change`` is B's minus A's;
- ``class_changed``: both models have a label there but of different classes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from maskreview.core.errors import BadInputError
from maskreview.core.masks import geometry_ious
from maskreview.core.progress import Progress
from maskreview.core.evaluation.results import compute

STATUSES = ("both", "a_only", "b_only", "neither")
METRIC_KEYS = ("mAP", "AP50", "AP75")


@dataclass
class InstanceDiff:
    sample_id: str
    gt_id: str
    gt_label: str
    status: str  # both | a_only | b_only | neither
    class_changed: bool
    a_id: str | None
    a_label: str | None
    a_iou: float | None
    b_id: str | None
    b_label: str | None
    b_iou: float | None
    iou_change: float | None  # b_iou - a_iou when both have a label there


@dataclass
class Comparison:
    gt_field: str
    a_field: str
    b_field: str
    iou_type: str
    iou_thresh: float
    metrics: dict  # {"a": {mAP, AP50, AP75, per_class}, "b": {...}}
    rows: list[InstanceDiff] = field(default_factory=list)
    counts: dict = field(default_factory=dict)  # GT class -> {status..., "class_changed": n}
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return _jsonable({**{k: getattr(self, k) for k in ("gt_field", "a_field", "b_field", "iou_type",
                                                           "iou_thresh", "metrics", "counts", "warnings")},
                          "rows": [asdict(r) for r in self.rows]})


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _metrics(results) -> dict:
    return {**{k: results.summary[k] for k in METRIC_KEYS}, "per_class": dict(results.summary["per_class"])}


def _best_any_class(results, iou_thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Per GT: the prediction of any class overlapping it most (-1 below ``iou_thresh``) and its IoU."""
    gt, pred = results.gt, results.pred
    best = np.full(len(gt), -1, np.int64)
    best_iou = np.full(len(gt), np.nan)
    for img in np.unique(gt.img):
        g = np.flatnonzero(gt.img == img)
        p = np.flatnonzero(pred.img == img)
        if not p.size:
            continue
        ious = geometry_ious([results.pred_geoms[i] for i in p], [results.gt_geoms[j] for j in g], gt.crowd[g])
        top = ious.argmax(axis=0)
        top_iou = ious[top, np.arange(len(g))]
        hit = top_iou >= iou_thresh
        best[g[hit]] = p[top[hit]]
        best_iou[g[hit]] = top_iou[hit]
    return best, best_iou


def _side(results, best, best_iou, g: int) -> tuple[bool, str | None, str | None, float | None]:
    """(found, label id, class, IoU) of one model for GT row ``g``."""
    if results.gt.outcome[g] == "tp":
        i, iou = int(results.gt.match[g]), float(results.gt.iou[g])
    elif best[g] >= 0:
        i, iou = int(best[g]), float(best_iou[g])
    else:
        return False, None, None, None
    return (results.gt.outcome[g] == "tp", str(results.pred.label_id[i]),
            results.classes[int(results.pred.cls[i])], iou)


def compare_fields(view, gt_field: str, a_field: str, b_field: str, iou_type: str = "segm",
                   iou_thresh: float = 0.5, progress: Progress | None = None) -> Comparison:
    """Compare prediction fields ``a_field`` and ``b_field`` against ``gt_field`` over ``view``."""

    if a_field == b_field:
        raise BadInputError(f"compare two different prediction fields (both are {a_field!r})")
    progress = progress or Progress()
    progress.start(3, "comparing models")
    ra = compute(view, gt_field, a_field, iou_type, iou_thresh, boundary=False, occlusion=False)
    progress.advance()
    progress.check()
    rb = compute(view, gt_field, b_field, iou_type, iou_thresh, boundary=False, occlusion=False)
    progress.advance()
    if list(ra.gt.label_id) != list(rb.gt.label_id):  # the same view and GT give the same rows
        raise BadInputError(f"ground truth {gt_field!r} changed while the models were compared; try again")
    best_a, iou_a = _best_any_class(ra, iou_thresh)
    best_b, iou_b = _best_any_class(rb, iou_thresh)
    comparison = Comparison(gt_field, a_field, b_field, iou_type, iou_thresh, {"a": _metrics(ra), "b": _metrics(rb)},
                            warnings=list(dict.fromkeys(ra.warnings + rb.warnings)))
    for g in range(len(ra.gt)):
        if ra.gt.crowd[g]:
            continue
        found_a, a_id, a_label, a_iou = _side(ra, best_a, iou_a, g)
        found_b, b_id, b_label, b_iou = _side(rb, best_b, iou_b, g)
        status = STATUSES[(0 if found_a and found_b else 1 if found_a else 2 if found_b else 3)]
        gt_label = ra.classes[int(ra.gt.cls[g])]
        row = InstanceDiff(ra.sample_ids[int(ra.gt.img[g])], str(ra.gt.label_id[g]), gt_label, status,
                           a_label is not None and b_label is not None and a_label != b_label,
                           a_id, a_label, a_iou, b_id, b_label, b_iou,
                           b_iou - a_iou if a_iou is not None and b_iou is not None else None)
        comparison.rows.append(row)
        counts = comparison.counts.setdefault(gt_label, {**{s: 0 for s in STATUSES}, "class_changed": 0})
        counts[status] += 1
        counts["class_changed"] += row.class_changed
    progress.advance()
    progress.finish()
    return comparison
