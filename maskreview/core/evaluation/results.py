"""An evaluation run: COCOeval (:mod:`engine`), then one row per GT and per prediction with its
outcome (:mod:`outcomes`).

Per-label outcomes are COCOeval's own matches at the chosen IoU threshold (area "all", 100
detections), so they are consistent with the mAP; an IoU threshold that is not one of COCO's ten
is matched with the same rule (``matching.py``).

Outcomes: ``tp``, ``fp``, ``fn``, or ``ignored`` for what COCOeval ignores: crowd GTs, the
detections matched to them, and detections beyond the 100 best of a class in an image. (FiftyOne's
own COCO evaluation counts crowd matches as TP and unmatched crowds as FN; we follow COCOeval
so that per-sample counts agree with the mAP.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from maskreview.core import heap
from maskreview.core.errors import BadInputError
from maskreview.core.evaluation import cache as reuse_cache, chunks, coco, engine, reading
from maskreview.core.evaluation.boundary import boundary_ious
from maskreview.core.evaluation.columns import CocoColumns
from maskreview.core.evaluation.encoding import LazyRles, block_ious, measure_reusing
from maskreview.core.evaluation.engine import PairBlock
from maskreview.core.evaluation.outcomes import (
    FN,
    IGNORED,
    OUTCOMES,
    Objects,
    gt_occlusion,
    outcomes_by_greedy,
    outcomes_from_matches,
)
from maskreview.core.fields import GT_FIELD, MODIFIED_FIELD, PRED_FIELD
from maskreview.core.store import dataset_of, reader
from maskreview.core.progress import Progress

__all__ = ["LARGE", "SMALL", "EvalResults", "Objects", "PairBlock", "compute", "compute_boundary_iou", "gt_occlusion"]

SMALL, LARGE = 32 ** 2, 96 ** 2  # COCO's area ranges


@dataclass
class EvalResults:
    iou_type: str
    gt_field: str
    pred_field: str
    iou_thresh: float
    sample_ids: list[str]
    heights: np.ndarray
    widths: np.ndarray
    classes: list[str]
    summary: dict
    gt: Objects
    pred: Objects
    precision: np.ndarray  # [T, K, R] area all, 100 dets (COCOeval's, -1 = no GT; FiftyOne's layout)
    pr_scores: np.ndarray  # [T, K, R] score at each recall point
    recall: np.ndarray  # [T, K] max recall
    iou_thrs: np.ndarray
    rec_thrs: np.ndarray
    gt_geoms: list = field(default_factory=list)  # RLE dicts (segm) or [x, y, w, h] boxes
    pred_geoms: list = field(default_factory=list)
    gt_masks: list = field(default_factory=list)  # (x0, y0, box mask) per GT (a box fills a mask-less one)
    pred_masks: list = field(default_factory=list)
    # (x0, y0, w, h) in pixels of each placed box mask above: what framing needs, kept when the masks are not
    gt_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    pred_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    eval_key: str | None = None
    warnings: list[str] = field(default_factory=list)
    sample_versions: list = field(default_factory=list)  # versions as read, filter conditions (guard the writes)
    evaluator: object = field(default=None, repr=False)  # the COCOeval that produced these results
    evaluation: engine.Evaluation | None = field(default=None, repr=False)
    entries: list = field(default_factory=list, repr=False)  # cache.Entry per sample (labels as read)
    cache: reuse_cache.SampleCache | None = field(default=None, repr=False)  # where the entries are kept
    fingerprint: tuple | None = None  # the dataset's labels as read (labels_fingerprint; runs: after its writes)
    _blocks: list[PairBlock] | None = field(default=None, repr=False)

    @property
    def blocks(self) -> list[PairBlock]:
        """COCOeval's IoU matrix of every (image, class), for re-matching at other thresholds."""
        if self._blocks is None:
            self._blocks = self.evaluation.blocks(self.gt.crowd)
        return self._blocks

    @property
    def per_sample(self) -> dict[str, np.ndarray]:
        """TP/FP/FN counts per sample (in ``sample_ids`` order), ignored objects left out."""
        n = len(self.sample_ids)
        out = {}
        for name, table in (("tp", self.pred), ("fp", self.pred), ("fn", self.gt)):
            out[name] = np.bincount(table.img[table.outcome == name], minlength=n)
        return out

    def class_index(self, name: str) -> int:
        return self.classes.index(name)


def labels_fingerprint(dataset) -> tuple:
    """``(samples, newest last_modified_at)`` of a dataset: changes with any write to any sample
    (every writer sets ``last_modified_at``; an index answers both)."""
    coll = reader.collection(dataset)
    newest = coll.find_one({}, {MODIFIED_FIELD: 1}, sort=[(MODIFIED_FIELD, -1)])
    return coll.count_documents({}, hint="_id_"), (newest or {}).get(MODIFIED_FIELD)


def compute(view, gt_field: str = GT_FIELD, pred_field: str = PRED_FIELD, iou_type: str = "segm",
            iou_thresh: float = 0.5, boundary: bool = True, occlusion: bool = True,
            progress: Progress | None = None, while_evaluating: Callable[[], None] | None = None,
            before_accumulate: Callable[[EvalResults], None] | None = None, reuse: bool = True,
            stored_key: str | None = None) -> EvalResults:
    """Evaluate ``pred_field`` against ``gt_field`` over a view; nothing is written.

    ``while_evaluating()`` runs once the labels are read, before COCOeval;
    ``before_accumulate(results)`` gets the per-label outcomes (all but the accumulated figures:
    summary, precision, occlusion) and may start writing them while the rest is computed.
    ``reuse``: take what the samples unchanged since the last run in this process had (their
    labels, RLEs, occlusion, boundary IoUs: :mod:`cache`) instead of reading and computing it again.
    ``stored_key``: read the values stored under this key with the labels (``runs`` then writes
    only the samples whose values differ).
    """
    progress = progress or Progress()
    progress.start(4, "evaluating")
    if not 0 < iou_thresh <= 1:
        raise BadInputError(f"IoU threshold {iou_thresh} must be in (0, 1]")
    cache = reuse_cache.for_view(view, (gt_field, pred_field)) if reuse else None
    fingerprint = labels_fingerprint(dataset_of(view))  # before reading: an edit meanwhile makes it stale
    inputs = coco.coco_inputs(view, gt_field, pred_field, iou_type, encode=False, cache=cache,
                              stored_key=stored_key, progress=progress, as_columns=True)
    heap.give_back_later()  # what reading freed (each batch's raw documents and decoded masks): COCOeval's tables next
    entries = inputs.samples.entries
    spans = chunks.image_chunks(len(inputs.gt["images"]))
    # the merge of the chunks, the ground truth's and the predictions' tables, outcomes, per chunk, accumulate
    post = 4 + len(spans) * ((iou_type == "segm" and boundary) + occlusion) + 1
    progress.total = progress.done + 1 + len(spans) + post
    progress.advance()
    progress.check()
    if while_evaluating is not None:
        while_evaluating()
    anns, dts = inputs.gt_columns, inputs.result_columns
    if iou_type == "segm":
        anns.measured()
        dts.measured()
    evaluation = _evaluate(inputs, iou_type, entries, cache is not None, spans, progress)
    heap.give_back_later()  # what the chunks' COCOeval objects freed: the label tables and the writes next
    progress.advance()  # (the chunks merged: 1,000,000 labels, ~1 s)
    progress.check()
    ev = evaluation.evaluator
    gt, pred = Objects.empty(len(anns)), Objects.empty(len(dts))
    heights = np.array([im["height"] for im in inputs.gt["images"]])
    widths = np.array([im["width"] for im in inputs.gt["images"]])
    gt.img[:] = anns.image_id - 1
    gt.label_id[:] = inputs.gt_label_ids
    gt.cls[:] = anns.category_id - 1
    gt.area[:] = anns.area
    gt.crowd[:] = anns.iscrowd
    gt.outcome[:] = OUTCOMES[np.where(gt.crowd, IGNORED, FN)]
    progress.advance()  # (the ground truth's tables; 1,000,000 labels took 2-5 s between updates at load 3-5 in one step)
    progress.check()
    pred.label_id[:] = inputs.pred_label_ids
    pred.img[:] = dts.image_id - 1
    pred.cls[:] = dts.category_id - 1
    pred.area[:] = evaluation.areas
    pred.score[:] = dts.score
    iou_thrs = np.asarray(ev.params.iouThrs)
    n_thr, n_cls, n_rec = len(iou_thrs), len(ev.params.catIds), len(ev.params.recThrs)
    results = EvalResults(
        iou_type, gt_field, pred_field, iou_thresh, inputs.sample_ids, heights, widths,
        [c["name"] for c in inputs.gt["categories"]], {}, gt, pred, -np.ones((n_thr, n_cls, n_rec)),
        -np.ones((n_thr, n_cls, n_rec)), -np.ones((n_thr, n_cls)), iou_thrs,
        np.asarray(ev.params.recThrs), *_geometries(iou_type, anns, dts, inputs, heights, widths), inputs.gt_masks,
        inputs.pred_masks, reading.boxes_of(inputs.gt_masks), reading.boxes_of(inputs.pred_masks),
        warnings=list(inputs.warnings),
        sample_versions=inputs.sample_versions, evaluator=ev, evaluation=evaluation, entries=entries, cache=cache,
        fingerprint=fingerprint)
    progress.advance()  # (the predictions' tables and geometries)
    progress.check()
    t_hits = np.flatnonzero(np.abs(iou_thrs - iou_thresh) < 1e-9)
    if t_hits.size:  # COCOeval's own matches
        outcomes_from_matches(evaluation, int(t_hits[0]), gt, pred)
    else:
        outcomes_by_greedy(results.blocks, iou_thresh, gt, pred)
    progress.advance()
    progress.check()
    if boundary and iou_type == "segm":
        compute_boundary_iou(results, spans, progress)
    if before_accumulate is not None:
        before_accumulate(results)
    if occlusion:  # not stored per label: computed while the values are being written
        _occlusion(results, anns.bbox, spans, progress)
    chunks.accumulate(evaluation, progress)  # a part per class and area range, Cancel between
    results.summary = coco.summary(ev)
    results.precision = np.transpose(ev.eval["precision"][:, :, :, 0, -1], (0, 2, 1))
    results.pr_scores = np.transpose(ev.eval["scores"][:, :, :, 0, -1], (0, 2, 1))
    results.recall = ev.eval["recall"][:, :, 0, -1]
    progress.advance()
    progress.finish()
    return results


def _evaluate(inputs: coco.CocoInputs, iou_type: str, entries: list, cached: bool, spans: list,
              progress: Progress) -> engine.Evaluation:
    """RLE encoding (segm) and COCOeval (:func:`engine.evaluate`), a chunk of images at a time
    (:mod:`chunks`: progress and Cancel between chunks, the same numbers), with the IoU
    matrices of the samples whose cache entry has them (by class name: class ids follow the
    classes present); keeps the others in the entries (``cached``). From
    ``chunks.BY_CLASS_IMAGES`` images on, the IoUs are made a span at a time, then COCOeval
    runs class by class (:func:`_evaluate_by_class`)."""
    cat_id = {c["name"]: c["id"] for c in inputs.gt["categories"]}
    names = {v: k for k, v in cat_id.items()}
    images, anns, dts = inputs.gt["images"], inputs.gt_columns, inputs.result_columns
    a_bounds = np.searchsorted(anns.image_id, [s0 + 1 for s0, _ in spans] + [len(images) + 1])
    d_bounds = np.searchsorted(dts.image_id, [s0 + 1 for s0, _ in spans] + [len(images) + 1])
    whole = chunks.Chunked(inputs.gt, len(anns), len(dts), iou_type) if len(spans) > 1 else None
    by_class = whole is not None and chunks.by_class(len(images), len(cat_id))
    given_by_class: dict = {}  # by class: category id -> the IoU matrices made before its chunks

    def keep(computed, known):
        for (img, cat), ious in computed.items() if cached else ():
            if len(ious) and (img, cat) not in known and entries[img - 1].kept:  # (cache.Entry.kept)
                entries[img - 1].ious[iou_type, names[cat]] = ious

    for c, (s0, s1) in enumerate(spans):
        a0, a1, d0, d1 = int(a_bounds[c]), int(a_bounds[c + 1]), int(d_bounds[c]), int(d_bounds[c + 1])
        known = {}
        for i in range(s0, s1) if cached else ():
            for (kind, name), ious in entries[i].ious.items():
                if kind == iou_type and name in cat_id:
                    known[i + 1, cat_id[name]] = ious
        given = known
        span_anns, span_dts = anns.rows(slice(a0, a1)), dts.rows(slice(d0, d1))
        if iou_type == "segm":  # areas, boxes and IoUs from the box masks (no full-image RLE)
            measured = measure_reusing(entries[s0:s1], images[s0:s1], span_anns, span_dts,
                                       inputs.gt_masks[a0:a1], inputs.pred_masks[d0:d1])
            given = {**known, **block_ious(span_anns, span_dts, *measured, skip=known)}
        if by_class:
            for key in given:
                given_by_class.setdefault(key[1], {})[key] = given[key]
            keep({k: v for k, v in given.items() if k not in known}, known)
        elif whole is None:
            evaluation = engine.evaluate({**inputs.gt, "annotations": anns.dicts()}, dts.dicts(), iou_type, given)
            keep(evaluation.evaluator.ious, known)
        else:
            keep(whole.add(images[s0:s1], np.arange(a0, a1), span_anns.dicts(), np.arange(d0, d1), span_dts.dicts(),
                           given), known)
        progress.advance()
        progress.check()
    if by_class:
        given = known = None  # (the last span's: each class's matrices let go of once it is evaluated)
        _evaluate_by_class(whole, inputs, given_by_class, keep if iou_type != "segm" else None, progress)
    return evaluation if whole is None else whole.finish()


def _evaluate_by_class(whole: chunks.Chunked, inputs: coco.CocoInputs, given: dict, keep,
                       progress: Progress) -> None:
    """COCOeval class by class (``chunks.Chunked.add_class``: each class's labels a span of
    images at a time, ``chunks.class_spans``), each class accumulated once its chunks are in;
    each chunk's COCO dicts made from the columns (``inputs.gt_columns``, ``result_columns``)
    as it is evaluated (all of them, 1,000,000 labels, held through the run were ~0.4 GB); ``given``: the IoU
    matrices made before, by category id, each class's taken out once its chunks are evaluated
    (held for every class to the end, 280,000 small arrays at 20,000 samples were a tenth of
    what a rerun in place added); ``keep(computed, known)``: those COCOeval made."""
    images, anns, dts = inputs.gt["images"], inputs.gt_columns, inputs.result_columns
    n_img = len(images)
    a_img, a_cat, d_img, d_cat = anns.image_id - 1, anns.category_id, dts.image_id - 1, dts.category_id
    cat_ids = whole.whole().params.catIds
    progress.check()  # (the evaluator over every image: 0.1 s of CPU at 100,000 images; then the plans)
    plans = []
    for k, cat in enumerate(cat_ids):
        a_rows, d_rows = np.flatnonzero(a_cat == cat), np.flatnonzero(d_cat == cat)
        counts = np.bincount(a_img[a_rows], minlength=n_img) + np.bincount(d_img[d_rows], minlength=n_img)
        plans.append((k, a_rows, d_rows, chunks.class_spans(counts)))
    n_area = len(whole.whole().params.areaRng)
    progress.total += sum(len(s) + n_area for *_, s in plans)  # (compute counted the spans, done above)
    progress.check()
    for k, a_rows, d_rows, spans in plans:
        known = given.pop(cat_ids[k], {})
        a_at = np.searchsorted(a_img[a_rows], [s0 for s0, _ in spans] + [n_img])
        d_at = np.searchsorted(d_img[d_rows], [s0 for s0, _ in spans] + [n_img])
        for c, (s0, s1) in enumerate(spans):
            ai, di = a_rows[a_at[c]:a_at[c + 1]], d_rows[d_at[c]:d_at[c + 1]]
            computed = whole.add_class(k, images[s0:s1], ai, anns.dicts(ai), di, dts.dicts(di), known)
            if keep is not None:
                keep(computed, known)
            progress.advance()
            progress.check()
        known = None
        whole.accumulate_class(k, progress)


def _geometries(iou_type: str, anns: CocoColumns, dts: CocoColumns, inputs, heights: np.ndarray,
                widths: np.ndarray) -> tuple:
    """GT and prediction geometries: boxes (bbox), or full-image RLEs made when first asked for (segm)."""
    if iou_type != "segm":
        return anns.bbox.tolist(), dts.bbox.tolist()
    g_img, d_img = anns.image_id - 1, dts.image_id - 1
    return (LazyRles(inputs.gt_masks, heights[g_img], widths[g_img]),
            LazyRles(inputs.pred_masks, heights[d_img], widths[d_img]))


def _by_span(img: np.ndarray, spans: list | None) -> list[np.ndarray]:
    """Positions into ``img`` (sorted image indices) per span of images."""
    if not spans:
        return [np.arange(len(img))]
    bounds = np.searchsorted(img, [s0 for s0, _ in spans] + [spans[-1][1]])
    return [np.arange(bounds[c], bounds[c + 1]) for c in range(len(spans))]


def _each_span(parts: list, progress: Progress | None):
    """``parts`` one by one, with progress and Cancel after each."""
    for part in parts:
        yield part
        if progress is not None:
            progress.advance()
            progress.check()


OCCLUSION_PIECE = 500  # GTs whose occlusion is computed between two Cancel checks (a span's 2,500: 0.3-0.6 s at load 6)


def _by_image_pieces(r: np.ndarray, img: np.ndarray, size: int) -> list[np.ndarray]:
    """``r`` (rows sorted by ``img``) in pieces of about ``size`` rows, cut between images only."""
    if len(r) <= size:
        return [r] if len(r) else []
    cuts = np.searchsorted(img[r], img[r[size::size]])  # each cut at the first row of its image
    return [p for p in np.split(r, np.unique(cuts)) if len(p)]


def _occlusion(results: EvalResults, gt_boxes: np.ndarray, spans: list | None = None, progress: Progress | None = None) -> None:
    """Each GT's occlusion (:func:`gt_occlusion`), kept per sample in its cache entry; a span
    of images at a time (progress and Cancel between)."""
    gt, entries, kind = results.gt, results.entries, results.iou_type
    todo = np.array([i for i, e in enumerate(entries) if kind not in e.occlusion], np.int64) if entries else None
    rows = np.flatnonzero(np.isin(gt.img, todo)) if todo is not None else np.arange(len(gt))
    for part in _each_span(_by_span(gt.img[rows], spans), progress):
        for r in _by_image_pieces(rows[part], gt.img, OCCLUSION_PIECE):
            if progress is not None:  # (it runs while a rerun's values are written: Cancel waits on it)
                progress.check()
            gt.occlusion[r] = gt_occlusion(gt.img[r], results.heights, results.widths,
                                           [results.gt_masks[g] for g in r.tolist()], gt_boxes[r])
    if not entries:
        return
    bounds = np.searchsorted(gt.img, np.arange(len(entries) + 1))
    for i, e in enumerate(entries):
        if kind in e.occlusion:
            gt.occlusion[bounds[i]:bounds[i + 1]] = e.occlusion[kind]
        elif e.kept:
            e.occlusion[kind] = gt.occlusion[bounds[i]:bounds[i + 1]].copy()


def compute_boundary_iou(results: EvalResults, spans: list | None = None, progress: Progress | None = None) -> None:
    """Boundary IoU of every matched (TP or crowd-ignored) prediction and its GT (segm only);
    a pair's is kept in its sample's cache entry. ``spans``: a span of images at a time
    (progress and Cancel between)."""
    if results.iou_type != "segm":
        return
    preds = np.flatnonzero(results.pred.match >= 0)
    gts = results.pred.match[preds]
    img = results.pred.img[preds]
    entries = results.entries
    keys = list(zip(results.gt.label_id[gts].tolist(), results.pred.label_id[preds].tolist())) if entries else []
    known = [entries[i].biou.get(k) for i, k in zip(img.tolist(), keys)] if entries else [None] * len(preds)
    todo = np.array([j for j, v in enumerate(known) if v is None], np.int64)
    biou = np.array([np.nan if v is None else v for v in known], float)
    for part in _each_span(_by_span(img[todo], spans), progress):
        if not len(part):
            continue
        t = todo[part]
        biou[t] = boundary_ious([(results.gt_masks[g], results.pred_masks[d]) for g, d in zip(gts[t], preds[t])],
                                results.heights[img[t]], results.widths[img[t]])
        for j in t.tolist() if entries else ():
            e = entries[img[j]]
            if e.kept:
                e.biou[keys[j]] = float(biou[j])
    set_boundary_ious(results, preds, biou)


def set_boundary_ious(results: EvalResults, preds: np.ndarray, biou: np.ndarray) -> None:
    """Store the boundary IoU of matched predictions ``preds``, and on their GTs."""
    results.pred.biou[preds] = biou
    gts = results.pred.match[preds]
    own = results.gt.match[gts] == preds  # the GT's own match (a crowd GT may take several)
    results.gt.biou[gts[own]] = biou[own]
