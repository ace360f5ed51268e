"""pycocotools' COCOeval on several cores: the images are split into shards, each shard is
evaluated by COCOeval itself in a worker process, and ``accumulate``/``summarize`` run once in
this process over the merged per-image results.

COCOeval evaluates every (category, area range, image) on its own and ``accumulate`` reads only
that list, so the numbers are the same as from one COCOeval over all images (a test checks it).
What the caller gets back is a real ``COCOeval`` with ``evalImgs``, ``ious`` and ``_gts`` as
after ``evaluate()``; the caller accumulates (while the per-label results are being written). The detections'
``area`` (filled by ``loadRes``) comes back too, since the caller's results are not touched.

One shard is evaluated in this process, the others by workers from a ``forkserver`` pool started on first use and kept: a fork of a clean
server process, never of the app (which holds Qt, torch and database threads).
``MASKREVIEW_EVAL_WORKERS`` sets the number of workers (1: everything in this process).
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

import numpy as np

MIN_IMAGES_PER_SHARD = 100  # below this the pickling costs more than a second core saves
LOCAL_SHARE = 0.7  # this process's shard, relative to a worker's (it also does the caller's other work)
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


def _evaluate_shard(images: list, annotations: list, categories: list, results: list, result_ids: np.ndarray,
                    iou_type: str, packed: bool = True) -> tuple:
    """COCOeval.evaluate() on one shard: its per-image results and IoU matrices (packed for the
    trip back from a worker, :func:`pack`), and each result's area. Detection ids are mapped
    back to the caller's numbering (``result_ids``: the global id of each result, in order)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from maskreview.core.gcpause import gc_paused

    with contextlib.redirect_stdout(io.StringIO()), gc_paused():
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": annotations, "categories": categories}
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        ev.evaluate()
    lookup = np.concatenate(([0], result_ids))  # local id j -> global id (0 stays "no match")
    for e in ev.evalImgs:
        if e is not None:
            e["dtIds"] = lookup[np.asarray(e["dtIds"], np.int64)].tolist()
            e["gtMatches"] = lookup[e["gtMatches"].astype(np.int64)].astype(float)
    areas = np.array([r["area"] for r in results], float)
    if not packed:
        return ev.evalImgs, ev.ious, areas
    return pack(ev.evalImgs, ev.params), pack_ious(ev.ious), areas


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
    """COCOeval over shards of the images: one evaluated here when :meth:`evaluated` is called
    (after the caller's other work), the others in worker processes meanwhile."""

    def __init__(self, coco_gt, results: list[dict], iou_type: str, shards: int, fallback=None):
        self._fallback = fallback  # evaluates in this process if the pool cannot (it says why in the log)
        img_ids = sorted(coco_gt.getImgIds())
        self._coco_gt, self._iou_type, self._n_results = coco_gt, iou_type, len(results)
        # this process also does the caller's other work: its shard is the smaller one
        weights = np.array([LOCAL_SHARE] + [1.0] * (shards - 1))
        cuts = np.round(np.cumsum(weights)[:-1] / weights.sum() * len(img_ids)).astype(int)
        self._shards = [list(s) for s in np.split(np.asarray(img_ids), cuts) if len(s)]
        shard_of = {img: s for s, ids in enumerate(self._shards) for img in ids}
        per_shard: list[list[int]] = [[] for _ in self._shards]
        for i, r in enumerate(results):
            per_shard[shard_of[r["image_id"]]].append(i)
        self._result_index = per_shard
        categories = coco_gt.dataset["categories"]
        self._jobs = []
        for ids, idx in zip(self._shards, per_shard):
            images = [coco_gt.imgs[i] for i in ids]
            annotations = [a for i in ids for a in coco_gt.imgToAnns.get(i, ())]
            self._jobs.append((images, annotations, categories, [results[j] for j in idx],
                               np.asarray(idx, np.int64) + 1, iou_type))
        self._futures: list[Future] | None = []
        try:
            pool = _executor(len(self._jobs) - 1)
            self._futures = [pool.submit(_evaluate_shard, *job) for job in self._jobs[1:]]
        except (OSError, RuntimeError) as exc:
            self._failed(exc)

    def evaluated(self):
        """The merged ``COCOeval`` as after ``evaluate()`` (``accumulate`` is the caller's), and
        each result's ``area``."""
        from pycocotools.cocoeval import COCOeval

        if self._futures is None:
            return self._fallback.evaluated()
        local = _evaluate_shard(*self._jobs[0], packed=False)
        try:
            parts = [f.result() for f in self._futures]
        except (BrokenProcessPool, OSError, RuntimeError) as exc:
            self._failed(exc)
            return self._fallback.evaluated()
        ev = COCOeval(self._coco_gt, None, self._iou_type)
        p = ev.params
        p.imgIds, p.catIds, p.maxDets = list(np.unique(p.imgIds)), list(np.unique(p.catIds)), sorted(p.maxDets)
        n_cat, n_area = len(p.catIds), len(p.areaRng)
        shard_evals = [local[0]] + [unpack(packed, p) for packed, _, _ in parts]
        merged = []
        for block in range(n_cat * n_area):  # COCOeval's order: category, area range, image
            for ids, evals in zip(self._shards, shard_evals):
                merged.extend(evals[block * len(ids):(block + 1) * len(ids)])
        ev.evalImgs = merged
        ev.ious = dict(local[1])
        for _, ious, _ in parts:
            ev.ious.update(unpack_ious(ious))
        ev._gts = defaultdict(list)
        for ann in self._coco_gt.loadAnns(self._coco_gt.getAnnIds(imgIds=p.imgIds, catIds=p.catIds)):
            ev._gts[ann["image_id"], ann["category_id"]].append(ann)
        ev._paramsEval = copy.deepcopy(p)
        areas = np.zeros(self._n_results)
        for idx, (_, _, a) in zip(self._result_index, [local] + parts):
            areas[idx] = a
        return ev, areas

    def _failed(self, exc: Exception) -> None:
        if self._fallback is None:
            raise exc
        log.warning("evaluation workers failed (%s); evaluating in this process", exc)
        for f in self._futures or ():
            f.cancel()
        self._futures = None
        shutdown(wait=False)


def shard_count(n_images: int, workers: int | None = None) -> int:
    workers = available_workers() if workers is None else workers
    return max(1, min(workers, n_images // MIN_IMAGES_PER_SHARD))
