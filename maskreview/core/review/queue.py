"""The review queue: the labels of a view ordered by how likely each is a label (or model) error.

Built from an :class:`~maskreview.core.evaluation.results.EvalResults` (segm: IoUs are mask
IoUs, and matched pairs carry their boundary IoU). Every ground-truth label of the view gets
one entry, and so does every confident prediction that no ground truth overlaps. Each entry has
a ``kind``, a ``score`` in [0, 1] (higher: more likely an error, reviewed first) and a
``reason`` in words. With ``conf`` a prediction's confidence, ``IoU`` mask IoU, ``bIoU``
boundary IoU (Cheng et al. 2021, ``core.evaluation.boundary``):

``missing``  (subject: the prediction) a prediction with ``conf >= min_confidence`` whose
    largest IoU with a ground truth of any class is below ``T_B`` (0.1):
    ``conf * (1 - IoU_any)``. A confident model and nothing labelled there: a missing label.
``class``    (subject: the ground truth) a prediction of another class, not matched to a
    ground truth of its own class, overlaps it with ``IoU >= iou_thresh``:
    ``conf_other * IoU_other * (1 - conf_same)``, ``conf_same`` the confidence of the
    ground truth's own match (0 if unmatched). The suggested class is the prediction's.
``boundary`` (subject: the ground truth) matched with ``q = min(IoU, bIoU) < BOUNDARY_OK`` (0.6),
    or unmatched with a same-class prediction at ``T_B <= IoU < iou_thresh``:
    ``conf * (1 - q)``. The model is sure of the object but not of its outline.
``spurious`` (subject: the ground truth) no prediction of any class at any score (inference keeps
    scores down to 0.05) overlaps it with ``IoU >= T_B``: ``SPURIOUS_WEIGHT * (1 - IoU_any)``.
    Not seeing an object at all is as likely a hard object as a wrong label, so it counts half.
``hard``     (subject: the ground truth) unmatched, and none of the above: ``HARD_WEIGHT``.
``ok``       (subject: the ground truth) matched with ``q >= BOUNDARY_OK``: ``conf * (1 - q)``
    (small: last in the queue, still there to be accepted).

A ground truth takes the kind with the highest score among those that apply. Ties keep the
view's sample order, then the label order. Crowd ground truths are left out.

Compared with cleanlab's object-detection scores (``cleanlab.object_detection.rank``: overlooked,
swap and badloc per box; ``tests/test_review_queue.py`` runs both on the same crafted
scenes): the three map onto ``missing``, ``class`` and ``boundary``, but cleanlab sees boxes
only, so a label whose box is right and whose mask is not (a bad outline inside the right box)
scores as clean there and as ``boundary`` here; cleanlab also scores images, not a per-label
queue with a reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from maskreview.core.evaluation.results import EvalResults
from maskreview.core.masks import geometry_ious, union_box

T_B = 0.1  # below this IoU two labels do not overlap at all (TIDE's background threshold)
BOUNDARY_OK = 0.6  # min(IoU, boundary IoU) from which a matched pair's outline agrees (1 px off at d = 5 px: 0.67)
SPURIOUS_WEIGHT = 0.5
HARD_WEIGHT = 0.05
KINDS = ("missing", "class", "boundary", "spurious", "hard", "ok")


@dataclass(frozen=True)
class QueueEntry:
    kind: str
    score: float
    reason: str
    sample_id: str
    field: str  # the subject: the label a verdict acts on
    label_id: str
    label: str
    other_field: str | None = None  # its counterpart (matched or overlapping label), if any
    other_id: str | None = None
    other_label: str | None = None
    confidence: float | None = None  # the counterpart's (or a missing-label prediction's own)
    iou: float | None = None
    biou: float | None = None
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # pixels (x, y, w, h) around subject and counterpart

    @property
    def suggested_label(self) -> str | None:
        """For a wrong-class entry: the class the model gives it."""
        return self.other_label if self.kind == "class" else None

    @property
    def on_prediction(self) -> bool:
        return self.kind == "missing"


@dataclass
class ReviewQueue:
    entries: list[QueueEntry]
    gt_field: str
    pred_field: str

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> QueueEntry:
        return self.entries[i]

    def index_of(self, label_id: str) -> int:
        return next((i for i, e in enumerate(self.entries) if e.label_id == label_id), -1)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(KINDS, 0)
        for e in self.entries:
            out[e.kind] += 1
        return out

    def sample_ids(self) -> list[str]:
        return list(dict.fromkeys(e.sample_id for e in self.entries))


def _box_of(boxes: np.ndarray, i: int) -> tuple[int, int, int, int]:
    x, y, w, h = boxes[i].tolist()
    return x, y, w, h


def _f(v) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def build_queue(results: EvalResults, sample_ids: Iterable[str] | None = None,
                min_confidence: float = 0.3) -> ReviewQueue:
    """The queue over ``sample_ids`` (default: every evaluated sample, in evaluation order)."""
    gt, pred = results.gt, results.pred
    classes = results.classes
    pos = {sid: i for i, sid in enumerate(results.sample_ids)}
    order = list(pos) if sample_ids is None else [s for s in dict.fromkeys(sample_ids) if s in pos]
    rank = {pos[s]: r for r, s in enumerate(order)}
    gf, pf = results.gt_field, results.pred_field
    gt_rows = np.flatnonzero(np.isin(gt.img, list(rank)) & ~gt.crowd) if rank else np.zeros(0, np.int64)
    pred_rows = np.flatnonzero(np.isin(pred.img, list(rank))) if rank else np.zeros(0, np.int64)
    scored: list[tuple[float, int, int, QueueEntry]] = []
    for img in np.unique(np.concatenate([gt.img[gt_rows], pred.img[pred_rows]])).tolist():
        gs = gt_rows[gt.img[gt_rows] == img]
        ps = pred_rows[pred.img[pred_rows] == img]
        ious = geometry_ious([results.pred_geoms[p] for p in ps], [results.gt_geoms[g] for g in gs], [0] * len(gs))
        sid = results.sample_ids[img]
        for b, g in enumerate(gs.tolist()):
            entry = _gt_entry(results, sid, g, ps, ious[:, b] if len(ps) else np.zeros(0))
            scored.append((entry.score, rank[img], b, entry))
        for a, p in enumerate(ps.tolist()):
            conf = float(pred.score[p])
            if pred.outcome[p] != "fp" or conf < min_confidence:
                continue
            best = float(ious[a].max()) if len(gs) else 0.0
            if best >= T_B:
                continue
            box = _box_of(results.pred_boxes, p)
            entry = QueueEntry(
                "missing", conf * (1 - best),
                f"confident prediction ({classes[pred.cls[p]]} {conf:.2f}) with no ground truth: missing label?",
                sid, pf, str(pred.label_id[p]), classes[pred.cls[p]], confidence=conf, iou=best, box=box)
            scored.append((entry.score, rank[img], len(gs) + a, entry))
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    return ReviewQueue([t[3] for t in scored], gf, pf)


def _gt_entry(results: EvalResults, sid: str, g: int, ps: np.ndarray, ious: np.ndarray) -> QueueEntry:
    """The one entry of ground truth row ``g``: the applicable kind with the highest score."""
    gt, pred, classes = results.gt, results.pred, results.classes
    name = classes[gt.cls[g]]
    own_box = _box_of(results.gt_boxes, g)
    base = dict(sample_id=sid, field=results.gt_field, label_id=str(gt.label_id[g]), label=name)
    candidates: list[QueueEntry] = []

    def other(p: int, kind: str, score: float, reason: str, iou=None, biou=None) -> QueueEntry:
        return QueueEntry(kind, float(score), reason, **base, other_field=results.pred_field,
                          other_id=str(pred.label_id[p]), other_label=classes[pred.cls[p]],
                          confidence=float(pred.score[p]), iou=_f(iou), biou=_f(biou),
                          box=union_box(own_box, _box_of(results.pred_boxes, p)))

    conf_same = 0.0
    if gt.outcome[g] == "tp":
        p = int(gt.match[g])
        iou, biou = float(gt.iou[g]), _f(gt.biou[g])
        q = min(iou, biou) if biou is not None else iou
        conf_same = float(pred.score[p])
        shown = f"IoU {iou:.2f}" + (f", boundary IoU {biou:.2f}" if biou is not None else "")
        if q < BOUNDARY_OK:
            candidates.append(other(p, "boundary", conf_same * (1 - q),
                                    f"the model's mask ({conf_same:.2f}) disagrees with the outline: {shown}: "
                                    "bad boundary?", iou, biou))
        else:
            candidates.append(other(p, "ok", conf_same * (1 - q), f"the model agrees ({conf_same:.2f}, {shown})",
                                    iou, biou))
    if len(ps):
        same = pred.cls[ps] == gt.cls[g]
        # another class over it, not taken by a ground truth of its own class
        free = np.array([pred.outcome[p] != "tp" or gt.cls[pred.match[p]] != pred.cls[p] for p in ps.tolist()])
        strength = np.where(~same & free & (ious >= results.iou_thresh), pred.score[ps] * ious, 0.0)
        if strength.max() > 0:
            a = int(np.argmax(strength))
            p = int(ps[a])
            candidates.append(other(p, "class", strength[a] * (1 - conf_same),
                                    f"the model calls it {classes[pred.cls[p]]} ({pred.score[p]:.2f}, IoU "
                                    f"{ious[a]:.2f}), not {name}: wrong class?", ious[a]))
        if gt.outcome[g] != "tp":
            loc = np.where(same & (ious >= T_B) & (ious < results.iou_thresh), pred.score[ps] * (1 - ious), 0.0)
            if loc.max() > 0:
                a = int(np.argmax(loc))
                p = int(ps[a])
                candidates.append(other(p, "boundary", loc[a],
                                        f"the model's {name} ({pred.score[p]:.2f}) overlaps it only with IoU "
                                        f"{ious[a]:.2f}: bad boundary?", ious[a]))
    best_any = float(ious.max()) if len(ps) else 0.0
    if gt.outcome[g] != "tp":
        if best_any < T_B:
            candidates.append(QueueEntry("spurious", SPURIOUS_WEIGHT * (1 - best_any),
                                         "no prediction finds it at any score: spurious or hard label?",
                                         **base, iou=best_any, box=own_box))
        else:
            candidates.append(QueueEntry("hard", HARD_WEIGHT, "unmatched: the model finds only other objects here",
                                         **base, iou=best_any, box=own_box))
    return max(candidates, key=lambda e: e.score)
