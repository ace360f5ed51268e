"""pycocotools' COCOeval on several cores. The images are split into shards; for each shard,
its masks are turned into RLE, COCOeval itself evaluates it, and the per-image extras
(occlusion, boundary IoU of the matches) are computed, the first shard in this process and the
others in worker processes at the same time. ``accumulate``/``summarize`` then run once, here,
over the merged per-image results.

COCOeval evaluates every (category, area range, image) on its own and ``accumulate`` reads only
that list, so the numbers are the same as from one COCOeval over all images (a test checks it).
The caller gets a real ``COCOeval`` with ``evalImgs``, ``ious`` and ``_gts`` as after
``evaluate()``, and accumulates it itself (while the per-label results are being written).

Workers come from a ``forkserver`` pool started on first use and kept: forks of a clean server
process, never of the app (which holds Qt, torch and database threads). If the pool fails, all
shards are evaluated here. ``MASKREVIEW_EVAL_WORKERS`` sets the number of processes (1: all here)
and ``MASKREVIEW_EVAL_MIN_IMAGES_PER_SHARD`` the smallest shard worth a process.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import logging
import os
import threading
from collections import defaultdict
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

MIN_IMAGES_PER_SHARD = 100  # below this the pickling costs more than a second core saves
LOCAL_SHARE = 0.8  # this process's shard, relative to a worker's (it also does the caller's other work)
MAX_WORKERS = 8

log = logging.getLogger(__name__)
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def available_workers() -> int:
    """Workers to use: ``MASKREVIEW_EVAL_WORKERS`` if set, else the cores this process may run on."""
    env = os.environ.get("MASKREVIEW_EVAL_WORKERS", "").strip()
    if env.isdigit():
        return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def _executor(n: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            import multiprocessing

            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload([__name__])
            _pool, _pool_size = ProcessPoolExecutor(n, mp_context=ctx), n
        return _pool


def worker_pids() -> list[int]:
    """The pool's worker processes (for benchmarks that count their CPU time)."""
    pool = _pool
    return list(getattr(pool, "_processes", None) or {}) if pool is not None else []


def shutdown(wait: bool = True) -> None:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=wait, cancel_futures=True)
        _pool, _pool_size = None, 0


@dataclass
class Job:
    """One shard: its images, their GT annotations and results (the caller's numbering)."""

    images: list
    annotations: list
    categories: list
    results: list
    result_ids: np.ndarray  # the global id (1-based position) of each result
    iou_type: str
    gt_masks: list | None = None  # (x0, y0, box mask) per annotation (for encoding, occlusion)
    pred_masks: list | None = None
    encode: bool = False  # make the segmentations (and the GT's area and bbox) from the masks
    occlusion: bool = False
    boundary_at: int | None = None  # boundary IoU of the matches at this IoU threshold index (segm)
    totals: tuple[int, int] = (0, 0)  # GT annotations and results in all shards


@dataclass
class Evaluated:
    evaluator: object  # COCOeval as after evaluate()
    areas: np.ndarray  # each result's area, as loadRes computes it
    occlusion: np.ndarray | None  # each GT's occlusion, when asked for
    boundary: tuple | None  # (result indices, boundary IoU with their match), when asked for


def run_job(job: Job, packed: bool = True) -> dict:
    """Encode the shard's masks (when given), run COCOeval.evaluate() on it and, when asked, the
    GT's occlusion. Detection ids are mapped back to the caller's numbering. ``packed``: results
    ready for the trip back from a worker (:func:`pack`)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from maskreview.core.evaluation.coco import encode_masks
    from maskreview.core.gcpause import gc_paused

    out = {}
    with contextlib.redirect_stdout(io.StringIO()), gc_paused():
        if job.encode:
            encode_masks(job.images, job.annotations, job.results, job.gt_masks, job.pred_masks)
        if job.encode and packed:  # in a worker: the caller's dicts get them from here
            out["encoded"] = ([a["segmentation"] for a in job.annotations], [a["area"] for a in job.annotations],
                              [a["bbox"] for a in job.annotations], [r["segmentation"] for r in job.results])
        if job.occlusion:
            out["occlusion"] = _occlusion(job)
        coco_gt = COCO()
        coco_gt.dataset = {"images": job.images, "annotations": job.annotations, "categories": job.categories}
        coco_gt.createIndex()
        dts = [dict(r) for r in job.results]  # loadRes writes into them; the caller's stay as they are
        ev = COCOeval(coco_gt, coco_gt.loadRes(dts) if dts else _no_detections(job), job.iou_type)
        ev.evaluate()
    lookup = np.concatenate(([0], job.result_ids))  # local id j -> global id (0 stays "no match")
    for e in ev.evalImgs:
        if e is not None:
            e["dtIds"] = lookup[np.asarray(e["dtIds"], np.int64)].tolist()
            e["gtMatches"] = lookup[e["gtMatches"].astype(np.int64)].astype(float)
    out["areas"] = np.array([r["area"] for r in dts], float)
    if job.boundary_at is not None and job.iou_type == "segm":
        with gc_paused():
            out["boundary"] = _boundary(job, ev)
    if packed:
        out["evals"], out["ious"] = pack(ev.evalImgs, ev.params), pack_ious(ev.ious)
    else:
        out["evaluator"] = ev
    return out


def _no_detections(job: Job):
    """A shard whose images have no detections (``loadRes`` cannot take an empty list)."""
    from pycocotools.coco import COCO

    coco_dt = COCO()
    coco_dt.dataset = {"images": job.images, "annotations": [], "categories": job.categories}
    coco_dt.createIndex()
    return coco_dt


def _boundary(job: Job, ev) -> tuple[np.ndarray, np.ndarray]:
    """Boundary IoU of the shard's matched results (COCOeval's matches at ``boundary_at``)."""
    from maskreview.core.evaluation.boundary import boundary_ious
    from maskreview.core.evaluation.results import Objects, _outcomes_from_evalimgs

    gt, pred = Objects.empty(job.totals[0]), Objects.empty(job.totals[1])
    _outcomes_from_evalimgs(ev, job.boundary_at, gt, pred)  # global numbering, this shard's rows only
    preds = np.flatnonzero(pred.match >= 0)
    gt_mask = {a["id"] - 1: m for a, m in zip(job.annotations, job.gt_masks)}
    pred_mask = dict(zip((job.result_ids - 1).tolist(), job.pred_masks))
    size = {im["id"]: (im["height"], im["width"]) for im in job.images}
    hw = np.array([size[r["image_id"]] for r in job.results], np.int64).reshape(-1, 2)
    row = {g: i for i, g in enumerate((job.result_ids - 1).tolist())}
    at = [row[d] for d in preds.tolist()]
    biou = boundary_ious([(gt_mask[g], pred_mask[d]) for g, d in zip(pred.match[preds].tolist(), preds.tolist())],
                         hw[at, 0], hw[at, 1])
    return preds, biou


def _occlusion(job: Job) -> np.ndarray:
    from maskreview.core.evaluation.results import gt_occlusion

    local = {im["id"]: i for i, im in enumerate(job.images)}
    img = np.array([local[a["image_id"]] for a in job.annotations], np.int64)
    heights = np.array([im["height"] for im in job.images], np.int64)
    widths = np.array([im["width"] for im in job.images], np.int64)
    return gt_occlusion(img, heights, widths, job.gt_masks, [a["bbox"] for a in job.annotations])


def pack(eval_imgs: list, params) -> dict:
    """COCOeval's per-image results as a few flat arrays (pickling thousands of small dicts and
    arrays costs more than evaluating them, measured)."""
    present = np.array([e is not None for e in eval_imgs], bool)
    entries = [e for e in eval_imgs if e is not None]
    area_index = {tuple(a): i for i, a in enumerate(params.areaRng)}
    n_thr = len(params.iouThrs)

    def flat(key, dtype):  # lists (ids, scores)
        return np.fromiter(itertools.chain.from_iterable(e[key] for e in entries), dtype)

    def joined(key, dtype):  # arrays, [T, n] or [n]
        parts = [e[key] for e in entries]
        if not parts:
            return np.zeros((n_thr, 0), dtype) if key != "gtIgnore" else np.zeros(0, dtype)
        return np.concatenate(parts, axis=0 if key == "gtIgnore" else 1).astype(dtype, copy=False)

    return {
        "present": present,
        "head": np.array([(e["image_id"], e["category_id"], area_index[tuple(e["aRng"])], e["maxDet"],
                           len(e["dtIds"]), len(e["gtIds"])) for e in entries], np.int64).reshape(-1, 6),
        "dtIds": flat("dtIds", np.int64), "gtIds": flat("gtIds", np.int64), "dtScores": flat("dtScores", float),
        "gtIgnore": joined("gtIgnore", np.int64), "dtMatches": joined("dtMatches", float),
        "dtIgnore": joined("dtIgnore", bool), "gtMatches": joined("gtMatches", float),
    }


def unpack(packed: dict, params) -> list:
    """The per-image result dicts back, as COCOeval made them (None where it had none)."""
    head = packed["head"]
    d_end, g_end = np.cumsum(head[:, 4]).tolist(), np.cumsum(head[:, 5]).tolist()
    dt_ids, gt_ids, scores = packed["dtIds"].tolist(), packed["gtIds"].tolist(), packed["dtScores"].tolist()
    gt_ig, dtm, dt_ig, gtm = packed["gtIgnore"], packed["dtMatches"], packed["dtIgnore"], packed["gtMatches"]
    entries, d0, g0 = [], 0, 0
    for (img, cat, area, max_det, _, _), d1, g1 in zip(head.tolist(), d_end, g_end):
        entries.append({"image_id": img, "category_id": cat, "aRng": params.areaRng[area], "maxDet": max_det,
                        "dtIds": dt_ids[d0:d1], "gtIds": gt_ids[g0:g1], "dtMatches": dtm[:, d0:d1],
                        "gtMatches": gtm[:, g0:g1], "dtScores": scores[d0:d1], "gtIgnore": gt_ig[g0:g1],
                        "dtIgnore": dt_ig[:, d0:d1]})
        d0, g0 = d1, g1
    it = iter(entries)
    return [next(it) if p else None for p in packed["present"].tolist()]


def pack_ious(ious: dict) -> tuple:
    keys = list(ious)
    shapes = [np.shape(ious[k]) if len(ious[k]) else (0, 0) for k in keys]
    flat = [np.asarray(ious[k], float).ravel() for k in keys if len(ious[k])]
    return keys, shapes, (np.concatenate(flat) if flat else np.zeros(0))


def unpack_ious(packed: tuple) -> dict:
    keys, shapes, flat = packed
    out, at = {}, 0
    for k, shape in zip(keys, shapes):
        n = shape[0] * shape[1]
        out[k] = flat[at:at + n].reshape(shape) if n else []
        at += n
    return out


class ShardedEval:
    """COCOeval over shards of the images: the first evaluated here when :meth:`evaluated` is
    called (after the caller's other work), the others in worker processes meanwhile. One shard:
    everything here, COCOeval's own object returned as it is."""

    def __init__(self, coco_gt, results: list[dict], iou_type: str, shards: int, gt_masks: list | None = None,
                 pred_masks: list | None = None, encode: bool = False, occlusion: bool = False,
                 boundary_at: int | None = None):
        img_ids = sorted(coco_gt.getImgIds())
        self._coco_gt, self._iou_type, self._results = coco_gt, iou_type, results
        self._occlusion, self._encode, self._boundary_at = occlusion, encode, boundary_at
        self._gt_masks, self._pred_masks = gt_masks, pred_masks
        totals = (len(coco_gt.dataset["annotations"]), len(results))
        # this process also does the caller's other work: its shard is the smaller one
        weights = np.array([LOCAL_SHARE] + [1.0] * (shards - 1))
        cuts = np.round(np.cumsum(weights)[:-1] / weights.sum() * len(img_ids)).astype(int)
        shard_ids = [list(s) for s in np.split(np.asarray(img_ids), cuts) if len(s)]
        shard_of = {img: s for s, ids in enumerate(shard_ids) for img in ids}
        result_index: list[list[int]] = [[] for _ in shard_ids]
        for i, r in enumerate(results):
            result_index[shard_of[r["image_id"]]].append(i)
        categories = coco_gt.dataset["categories"]
        self._jobs = []
        for ids, idx in zip(shard_ids, result_index):
            anns = [a for i in ids for a in coco_gt.imgToAnns.get(i, ())]
            ann_index = [a["id"] - 1 for a in anns]
            self._jobs.append((Job(
                [coco_gt.imgs[i] for i in ids], anns, categories, [results[j] for j in idx],
                np.asarray(idx, np.int64) + 1, iou_type,
                None if gt_masks is None else [gt_masks[a] for a in ann_index],
                None if pred_masks is None else [pred_masks[j] for j in idx], encode, occlusion, boundary_at, totals),
                ids, idx, ann_index))
        self._futures: list[Future] | None = []
        if len(self._jobs) > 1:
            try:
                pool = _executor(len(self._jobs) - 1)
                self._futures = [pool.submit(run_job, job) for job, *_ in self._jobs[1:]]
            except (OSError, RuntimeError) as exc:
                self._failed(exc)

    def evaluated(self):
        """The shards' results merged (:class:`Evaluated`); the segmentations made by the shards
        are filled into the caller's dicts."""
        from pycocotools.cocoeval import COCOeval

        if self._futures is None:  # the pool failed: all of it here
            return self._here_whole()
        local = run_job(self._jobs[0][0], packed=False)
        if len(self._jobs) == 1:
            return _evaluated(local["evaluator"], local)
        try:
            parts = [f.result() for f in self._futures]
        except (BrokenProcessPool, OSError, RuntimeError) as exc:
            self._failed(exc)
            return self._here_whole()
        n_ann, n_res = len(self._coco_gt.dataset["annotations"]), len(self._results)
        areas, occlusion = np.zeros(n_res), np.zeros(n_ann) if self._occlusion else None
        for (job, *_), part in zip(self._jobs[1:], parts):
            if "encoded" in part:  # the worker's segmentations, into the caller's dicts
                for ann, seg, area, box in zip(job.annotations, *part["encoded"][:3]):
                    ann["segmentation"], ann["area"], ann["bbox"] = seg, area, box
                for res, seg in zip(job.results, part["encoded"][3]):
                    res["segmentation"] = seg
        for (_, _, idx, ann_index), part in zip(self._jobs, [local] + parts):
            areas[idx] = part["areas"]
            if occlusion is not None:
                occlusion[ann_index] = part["occlusion"]
        ev = COCOeval(self._coco_gt, None, self._iou_type)
        p = ev.params
        p.imgIds, p.catIds, p.maxDets = list(np.unique(p.imgIds)), list(np.unique(p.catIds)), sorted(p.maxDets)
        shard_evals = [local["evaluator"].evalImgs] + [unpack(part["evals"], p) for part in parts]
        merged = []
        for block in range(len(p.catIds) * len(p.areaRng)):  # COCOeval's order: category, area range, image
            for (_, ids, _, _), evals in zip(self._jobs, shard_evals):
                merged.extend(evals[block * len(ids):(block + 1) * len(ids)])
        ev.evalImgs = merged
        ev.ious = dict(local["evaluator"].ious)
        for part in parts:
            ev.ious.update(unpack_ious(part["ious"]))
        ev._gts = defaultdict(list)
        for ann in self._coco_gt.loadAnns(self._coco_gt.getAnnIds(imgIds=p.imgIds, catIds=p.catIds)):
            ev._gts[ann["image_id"], ann["category_id"]].append(ann)
        ev._paramsEval = copy.deepcopy(p)
        boundary = None
        if self._boundary_at is not None and self._iou_type == "segm":
            boundary = tuple(np.concatenate(v) for v in zip(*(part["boundary"] for part in [local] + parts)))
        return Evaluated(ev, areas, occlusion, boundary)

    def _here_whole(self):
        whole = Job(self._coco_gt.dataset["images"], self._coco_gt.dataset["annotations"],
                    self._coco_gt.dataset["categories"], self._results, np.arange(1, len(self._results) + 1),
                    self._iou_type, self._gt_masks, self._pred_masks, self._encode, self._occlusion,
                    self._boundary_at, (len(self._coco_gt.anns), len(self._results)))
        out = run_job(whole, packed=False)
        return _evaluated(out["evaluator"], out)

    def _failed(self, exc: Exception) -> None:
        log.warning("evaluation workers failed (%s); evaluating in this process", exc)
        for f in self._futures or ():
            f.cancel()
        self._futures = None
        shutdown(wait=False)


def _evaluated(evaluator, out: dict) -> Evaluated:
    return Evaluated(evaluator, out["areas"], out.get("occlusion"), out.get("boundary"))


def shard_count(n_images: int, workers: int | None = None) -> int:
    workers = available_workers() if workers is None else workers
    env = os.environ.get("MASKREVIEW_EVAL_MIN_IMAGES_PER_SHARD", "").strip()
    least = max(1, int(env)) if env.isdigit() else MIN_IMAGES_PER_SHARD
    return max(1, min(workers, n_images // least))
