"""What the panels show, computed from an :class:`EvalResults`: the per-class table, PR curves,
the confusion matrix with its cell members, sample orderings, failure groups, and the
dataset-wide re-matching behind the confidence / IoU sliders. All Qt-free and fast.

Size bins are COCO's on the instance area: small <= 32², medium <= 96², large above.
Occlusion bins on the share of a GT covered by another GT's box: none (0), partial (<= 0.3),
heavy (> 0.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from maskreview.core.evaluation.matching import coco_greedy
from maskreview.core.evaluation.results import LARGE, SMALL, EvalResults
from maskreview.core.masks import geometry_ious
from maskreview.core.progress import Progress

BACKGROUND = "(background)"
OCCLUSION_BINS = (("none", 0.0, 0.0), ("partial", 0.0, 0.3), ("heavy", 0.3, 1.0))


def _f1(tp: float, fp: float, fn: float) -> float:
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else float("nan")


# ----------------------------------------------------------------------------- per-class table

def class_table(results: EvalResults) -> list[dict]:
    """One row per class: AP (.5:.95), AP50, precision, recall, F1, support, TP, FP, FN."""
    rows = []
    t50 = int(np.argmin(np.abs(results.iou_thrs - 0.5)))
    for k, name in enumerate(results.classes):
        p = results.precision[:, k, :]
        ap = float(p[p > -1].mean()) if (p > -1).any() else -1.0
        p50 = results.precision[t50, k, :]
        ap50 = float(p50.mean()) if (p50 > -1).all() else -1.0
        tp = int(np.sum((results.pred.cls == k) & (results.pred.outcome == "tp")))
        fp = int(np.sum((results.pred.cls == k) & (results.pred.outcome == "fp")))
        fn = int(np.sum((results.gt.cls == k) & (results.gt.outcome == "fn")))
        support = int(np.sum((results.gt.cls == k) & ~results.gt.crowd))
        rows.append({"class": name, "AP": ap, "AP50": ap50,
                     "precision": tp / (tp + fp) if tp + fp else float("nan"),
                     "recall": tp / (tp + fn) if tp + fn else float("nan"),
                     "F1": _f1(tp, fp, fn), "support": support, "TP": tp, "FP": fp, "FN": fn})
    return rows


def pr_curves(results: EvalResults, iou: float | None = 0.5) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """COCOeval's interpolated PR curve per class at one IoU (None: averaged over the ten)."""
    if iou is None:
        prec = results.precision.mean(axis=0)
        valid = (results.precision > -1).all(axis=0)
    else:
        t = int(np.argmin(np.abs(results.iou_thrs - iou)))
        prec, valid = results.precision[t], results.precision[t] > -1
    return {name: (results.rec_thrs.copy(), prec[k].copy())
            for k, name in enumerate(results.classes) if valid[k].all()}


# ----------------------------------------------------------------------------- confusion matrix

@dataclass
class Confusion:
    """Rows: GT class (last: background = unmatched predictions); columns: predicted class
    (last: background = missed GT). ``members[(r, c)]`` holds the GT and prediction rows."""

    labels: list[str]
    matrix: np.ndarray
    members: dict = field(default_factory=dict)
    results: EvalResults | None = None

    def cell_ids(self, row: int, col: int) -> tuple[list[str], list[str]]:
        """``(sample ids, label ids)`` of exactly the labels in one cell."""
        gts, preds = self.members.get((row, col), ([], []))
        r = self.results
        imgs = sorted({int(r.gt.img[g]) for g in gts} | {int(r.pred.img[p]) for p in preds})
        labels = [r.gt.label_id[g] for g in gts] + [r.pred.label_id[p] for p in preds]
        return [r.sample_ids[i] for i in imgs], labels


def confusion(results: EvalResults) -> Confusion:
    """TPs on the diagonal (the stored matches); an FP and an FN of another class in the same image
    with IoU >= the eval threshold are paired greedily by score as a confusion; the rest go to
    the background row or column. Ignored objects are left out."""
    k = len(results.classes)
    gt, pred = results.gt, results.pred
    members: dict = {}

    def add(r, c, g=None, p=None):
        cell = members.setdefault((r, c), ([], []))
        if g is not None:
            cell[0].append(int(g))
        if p is not None:
            cell[1].append(int(p))

    for p in np.flatnonzero(pred.outcome == "tp"):
        add(pred.cls[p], pred.cls[p], pred.match[p], p)
    fp_rows = np.flatnonzero(pred.outcome == "fp")
    fn_rows = np.flatnonzero(gt.outcome == "fn")
    paired_fp, paired_fn = set(), set()
    for i in np.intersect1d(pred.img[fp_rows], gt.img[fn_rows]):
        ps = fp_rows[pred.img[fp_rows] == i]
        ps = ps[np.argsort(-pred.score[ps], kind="mergesort")]
        gs = fn_rows[gt.img[fn_rows] == i]
        ious = geometry_ious([results.pred_geoms[p] for p in ps], [results.gt_geoms[g] for g in gs], [0] * len(gs))
        ious[pred.cls[ps][:, None] == gt.cls[gs][None, :]] = 0.0  # same class did not match: not a confusion
        taken = np.zeros(len(gs), bool)
        for a, p in enumerate(ps):
            cand = np.where(taken, -1.0, ious[a])
            b = int(np.argmax(cand)) if len(cand) else -1
            if b >= 0 and cand[b] >= results.iou_thresh:
                taken[b] = True
                add(gt.cls[gs[b]], pred.cls[p], gs[b], p)
                paired_fp.add(int(p))
                paired_fn.add(int(gs[b]))
    for p in fp_rows:
        if int(p) not in paired_fp:
            add(k, pred.cls[p], None, p)
    for g in fn_rows:
        if int(g) not in paired_fn:
            add(gt.cls[g], k, g, None)
    matrix = np.zeros((k + 1, k + 1), np.int64)
    for (r, c), (gs, ps) in members.items():
        matrix[r, c] = max(len(gs), len(ps))
    return Confusion(list(results.classes) + [BACKGROUND], matrix, members, results)


# ----------------------------------------------------------------------------- sample orderings

def sample_scores(results: EvalResults) -> dict[str, np.ndarray]:
    counts = results.per_sample
    tp, fp, fn = (counts[k].astype(float) for k in ("tp", "fp", "fn"))
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.ones_like(tp), where=denom > 0)  # nothing to find: perfect
    return {"fp": counts["fp"], "fn": counts["fn"], "tp": counts["tp"], "f1": f1}


def sample_order(results: EvalResults, by: str = "fp") -> list[str]:
    """Sample ids by FP count or FN count (most first) or per-sample F1 (worst first)."""
    scores = sample_scores(results)
    if by not in ("fp", "fn", "f1"):
        raise ValueError(f"sort by fp, fn or f1, not {by!r}")
    key = scores[by] if by == "f1" else -scores[by]
    return [results.sample_ids[i] for i in np.argsort(key, kind="stable")]


def sorted_view(dataset, results: EvalResults, by: str = "fp"):
    return dataset.select(sample_order(results, by), ordered=True)


# ----------------------------------------------------------------------------- failure groups

@dataclass
class Group:
    kind: str  # "class" | "size" | "occlusion"
    name: str
    n_gt: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    sample_ids: list[str]  # samples with an FP or FN of this group
    label_ids: list[str]  # those FP and FN labels

    @property
    def fp_rate(self) -> float:
        return self.fp / self.n_pred if self.n_pred else float("nan")

    @property
    def fn_rate(self) -> float:
        return self.fn / self.n_gt if self.n_gt else float("nan")


def _group(results: EvalResults, kind: str, name: str, gt_mask, pred_mask) -> Group:
    gt, pred = results.gt, results.pred
    gt_mask = gt_mask & (gt.outcome != "ignored")
    pred_mask = pred_mask & (pred.outcome != "ignored") if pred_mask is not None else None
    fn_rows = np.flatnonzero(gt_mask & (gt.outcome == "fn"))
    fp_rows = np.flatnonzero(pred_mask & (pred.outcome == "fp")) if pred_mask is not None else np.zeros(0, int)
    imgs = sorted(set(gt.img[fn_rows].tolist()) | set(pred.img[fp_rows].tolist()))
    return Group(kind, name, int(gt_mask.sum()), int(pred_mask.sum()) if pred_mask is not None else 0,
                 int(np.sum(gt_mask & (gt.outcome == "tp"))), len(fp_rows), len(fn_rows),
                 [results.sample_ids[i] for i in imgs],
                 gt.label_id[fn_rows].tolist() + pred.label_id[fp_rows].tolist())


def size_bin(area: np.ndarray) -> np.ndarray:
    return np.where(area <= SMALL, "small", np.where(area <= LARGE, "medium", "large"))


def occlusion_bin(occ: np.ndarray) -> np.ndarray:
    return np.where(occ > 0.3, "heavy", np.where(occ > 0.0, "partial", "none"))


def failure_groups(results: EvalResults) -> list[Group]:
    """FP/FN rates and members by class, by size and by occlusion (GT only: FN)."""
    gt, pred = results.gt, results.pred
    out = [_group(results, "class", name, gt.cls == k, pred.cls == k) for k, name in enumerate(results.classes)]
    gsize, psize = size_bin(gt.area), size_bin(pred.area)
    out += [_group(results, "size", s, gsize == s, psize == s) for s in ("small", "medium", "large")]
    if not np.isnan(gt.occlusion).all():
        occ = occlusion_bin(np.nan_to_num(gt.occlusion))
        out += [_group(results, "occlusion", b, occ == b, None) for b, _, _ in OCCLUSION_BINS]
    return out


def labels_view(dataset, sample_ids: list[str], label_ids: list[str]):
    """The samples, showing exactly the given labels (a filtered FiftyOne view)."""
    return dataset.select(sample_ids, ordered=True).select_labels(ids=label_ids)


# ----------------------------------------------------------------------------- live re-matching

@dataclass
class Rematch:
    conf_thresh: float
    iou_thresh: float
    gt_outcome: np.ndarray
    pred_outcome: np.ndarray  # "tp" | "fp" | "ignored" | "below" (under the confidence threshold)
    per_sample: dict
    per_class: list[dict]
    totals: dict
    pred_match: np.ndarray | None = None  # GT row of each prediction's match at these thresholds, -1 = none
    pred_iou: np.ndarray | None = None  # its IoU, nan = none


def rematch_dataset(results: EvalResults, conf_thresh: float = 0.0, iou_thresh: float = 0.5,
                    progress: Progress | None = None) -> Rematch:
    """TP/FP/FN of every label at new thresholds, reusing COCOeval's IoU matrices (no geometry).

    Run it off the UI thread: it takes well under a second for thousands of images.
    """
    progress = progress or Progress()
    gt, pred = results.gt, results.pred
    gt_out = np.where(gt.crowd, "ignored", "fn").astype(object)
    pred_out = np.full(len(pred), "ignored", dtype=object)  # beyond 100 per class and image
    pred_match = np.full(len(pred), -1, np.int64)
    pred_iou = np.full(len(pred), np.nan)
    progress.start(len(results.blocks), "re-matching")
    for n, b in enumerate(results.blocks):
        if n % 500 == 499:
            progress.check()
            progress.advance(500)
        keep = pred.score[b.preds] >= conf_thresh
        pred_out[b.preds[~keep]] = "below"
        rows = np.flatnonzero(keep)
        dm, _, dig = coco_greedy(b.ious[rows], b.gt_ignore, b.gt_crowd, iou_thresh)
        for r, m in zip(rows, dm):
            d = b.preds[r]
            if m < 0:
                pred_out[d] = "fp"
            else:
                pred_out[d] = "ignored" if b.gt_ignore[m] else "tp"
                pred_match[d], pred_iou[d] = b.gts[m], b.ious[r, m]
                if not b.gt_ignore[m]:
                    gt_out[b.gts[m]] = "tp"
    progress.finish()
    n = len(results.sample_ids)
    per_sample = {k: np.bincount(t.img[o == k], minlength=n)
                  for k, t, o in (("tp", pred, pred_out), ("fp", pred, pred_out), ("fn", gt, gt_out))}
    per_class = []
    for k, name in enumerate(results.classes):
        tp = int(np.sum((pred.cls == k) & (pred_out == "tp")))
        fp = int(np.sum((pred.cls == k) & (pred_out == "fp")))
        fn = int(np.sum((gt.cls == k) & (gt_out == "fn")))
        per_class.append({"class": name, "TP": tp, "FP": fp, "FN": fn,
                          "precision": tp / (tp + fp) if tp + fp else float("nan"),
                          "recall": tp / (tp + fn) if tp + fn else float("nan"), "F1": _f1(tp, fp, fn)})
    tp, fp, fn = (int(per_sample[k].sum()) for k in ("tp", "fp", "fn"))
    totals = {"TP": tp, "FP": fp, "FN": fn, "precision": tp / (tp + fp) if tp + fp else float("nan"),
              "recall": tp / (tp + fn) if tp + fn else float("nan"), "F1": _f1(tp, fp, fn)}
    return Rematch(conf_thresh, iou_thresh, gt_out, pred_out, per_sample, per_class, totals, pred_match, pred_iou)
