"""Reviewer work in a prediction field, and a model's new output merged around it.

A label in a prediction field is *reviewer work* when any of these holds (read from the raw
sample document, see :mod:`maskreview.core.editing.ops` for how edits mark labels):

- it has tags (set in maskreview, the FiftyOne App or Python);
- it was added in review (``review_added``);
- it was edited (relabelled, mask edited): ``<field>_original`` holds its snapshot
  (``original_of`` is its id);
- it was promoted: a label of the same sample has ``source_field == field`` and
  ``source_label_id`` equal to its id.

A prediction the reviewer deleted leaves its snapshot in ``<field>_original`` with no live
label of that id: that snapshot is the record of the deletion, and stays.

:func:`merge` replaces only the untouched labels: reviewer work is kept exactly (same document:
id, class, mask, tags, attributes). Each reviewer label, kept or deleted, then stands for the
one new prediction that is its counterpart: the same class (the label's class now or before
review) with the highest mask IoU, at least 0.5, matched one to one greedily by IoU as COCO
does. That prediction is left out: the reviewer has handled that object already (kept label)
or said it is not there (deleted). All other predictions, duplicates included, are written as
the model made them, so a rerun of the same model gives the same labels back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from maskreview.core import masks as mk
from maskreview.core.editing.labels import as_detection
from maskreview.core.fields import (MODIFIED_FIELD, ORIGINAL_OF, REV_FIELD, REVIEW_ADDED, SOURCE_FIELD, SOURCE_LABEL_ID,
                                    original_field)

OVERLAP_IOU = 0.5


def _dets(doc: dict, name: str) -> list[dict]:
    return ((doc or {}).get(name) or {}).get("detections") or []


def promoted_ids(doc: dict, field_name: str) -> set[str]:
    """Ids of labels in ``field_name`` that a label elsewhere in the sample was promoted from."""
    out = set()
    for value in (doc or {}).values():
        if isinstance(value, dict) and value.get("detections"):
            out.update(str(d.get(SOURCE_LABEL_ID)) for d in value["detections"]
                       if isinstance(d, dict) and d.get(SOURCE_FIELD) == field_name and d.get(SOURCE_LABEL_ID))
    return out


def is_reviewer_label(label: dict, snapshot_ids: set[str] = frozenset(), promoted: set[str] = frozenset()) -> bool:
    """Whether one raw label document is reviewer work (tags, added, edited or promoted)."""
    label_id = str(label.get("_id"))
    return bool(label.get("tags") or label.get(REVIEW_ADDED) or label_id in snapshot_ids or label_id in promoted)


def reviewed_ids(doc: dict, field_name: str) -> set[str]:
    """Ids of the labels in ``doc[field_name]`` that are reviewer work."""
    snapshots = {str(s.get(ORIGINAL_OF)) for s in _dets(doc, original_field(field_name))}
    promoted = promoted_ids(doc, field_name)
    return {str(d["_id"]) for d in _dets(doc, field_name) if is_reviewer_label(d, snapshots, promoted)}


def deleted_originals(doc: dict, field_name: str) -> list[dict]:
    """Snapshots of labels the reviewer deleted from ``field_name`` (no live label has their id)."""
    live = {str(d.get("_id")) for d in _dets(doc, field_name)}
    return [s for s in _dets(doc, original_field(field_name)) if str(s.get(ORIGINAL_OF)) not in live]


def review_projection(field_name: str, label_fields) -> dict:
    """The parts of a sample document :func:`merge` reads (not the other fields' masks)."""
    proj = {field_name: 1, original_field(field_name): 1, MODIFIED_FIELD: 1, REV_FIELD: 1}
    for name in label_fields:
        if name not in proj:
            proj[f"{name}.detections.{SOURCE_FIELD}"] = 1
            proj[f"{name}.detections.{SOURCE_LABEL_ID}"] = 1
    return proj


@dataclass
class Merge:
    detections: list[dict]  # raw label documents to write
    kept: int = 0  # reviewer labels kept
    replaced: int = 0  # untouched labels of the earlier run replaced
    dropped_as_reviewed: int = 0  # new predictions overlapping a kept reviewer label
    dropped_as_deleted: int = 0  # new predictions matching a deleted one
    kept_ids: list[str] = field(default_factory=list)


def _rles(docs: list[dict], height: int, width: int) -> list:
    """Full-image RLEs of raw label documents, all at once (a mask-less label fills its box)."""
    return mk.paste_rles([mk.detection_placed(as_detection(doc), height, width) for doc in docs], height, width)


def _boxes(docs: list[dict]) -> np.ndarray:
    return np.array([d.get("bounding_box") or [0, 0, 0, 0] for d in docs], float).reshape(-1, 4)


def _ious(a: list[dict], b: list[dict], height: int, width: int) -> np.ndarray:
    """Mask IoU of every pair; masks are encoded only for labels whose boxes meet (a mask lies
    inside its box)."""
    out = np.zeros((len(a), len(b)))
    if not a or not b:
        return out
    ba, bb = _boxes(a)[:, None, :], _boxes(b)[None, :, :]
    ix = np.minimum(ba[..., 0] + ba[..., 2], bb[..., 0] + bb[..., 2]) - np.maximum(ba[..., 0], bb[..., 0])
    iy = np.minimum(ba[..., 1] + ba[..., 3], bb[..., 1] + bb[..., 3]) - np.maximum(ba[..., 1], bb[..., 1])
    meet = (ix > 0) & (iy > 0)
    rows, cols = np.flatnonzero(meet.any(axis=1)), np.flatnonzero(meet.any(axis=0))
    if rows.size:
        out[np.ix_(rows, cols)] = mk.geometry_ious(_rles([a[i] for i in rows], height, width),
                                                   _rles([b[j] for j in cols], height, width))
    return out


def _counterparts(new: list[dict], others: list[dict], classes: list[set], height: int, width: int,
                  iou_thresh: float) -> np.ndarray:
    """For each new label: whether it is the counterpart of one of ``others`` (one to one,
    greedily by IoU, same class, IoU >= ``iou_thresh``)."""
    ious = _ious(new, others, height, width)
    same = np.array([[n.get("label") in c for c in classes] for n in new], bool).reshape(ious.shape)
    ious = np.where(same, ious, 0.0)
    taken = np.zeros(len(new), bool)
    used = np.zeros(len(others), bool)
    for flat in np.argsort(-ious, axis=None, kind="stable"):
        i, j = np.unravel_index(flat, ious.shape)
        if ious[i, j] < iou_thresh:
            break
        if not (taken[i] or used[j]):
            taken[i] = used[j] = True
    return taken


def merge(doc: dict, field_name: str, new: list[dict], height: int, width: int,
          iou_thresh: float = OVERLAP_IOU) -> Merge:
    """The labels to write into ``field_name``: reviewer work as it is, then the new predictions
    that neither overlap it nor repeat a deleted prediction. ``new`` are raw label documents."""
    old = _dets(doc, field_name)
    keep = reviewed_ids(doc, field_name)
    kept = [d for d in old if str(d["_id"]) in keep]
    deleted = deleted_originals(doc, field_name)
    result = Merge([], kept=len(kept), replaced=len(old) - len(kept), kept_ids=[str(d["_id"]) for d in kept])
    if not (kept or deleted):
        result.detections = list(new)
        return result
    snapshots = {str(x.get(ORIGINAL_OF)): x for x in _dets(doc, original_field(field_name))}
    kept_classes = [{d.get("label"), (snapshots.get(str(d["_id"])) or {}).get("label", d.get("label"))} for d in kept]
    over_kept = _counterparts(new, kept, kept_classes, height, width, iou_thresh)
    rest = [n for n, taken in zip(new, over_kept) if not taken]
    over_deleted = np.zeros(len(new), bool)
    over_deleted[np.flatnonzero(~over_kept)] = _counterparts(rest, deleted, [{d.get("label")} for d in deleted],
                                                             height, width, iou_thresh)
    result.dropped_as_reviewed = int(over_kept.sum())
    result.dropped_as_deleted = int(over_deleted.sum())
    result.detections = kept + [n for n, drop in zip(new, over_kept | over_deleted) if not drop]
    return result
