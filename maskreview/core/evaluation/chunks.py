"""COCOeval over chunks of images, with the numbers of one COCOeval over all of them.

COCOeval's ``evaluate`` works per (image, category): the IoU matrix and the matches of one
image never depend on another image. So a large set is evaluated a chunk of images at a time
(:func:`engine.evaluate` on the chunk's images, annotations and results): between chunks the
caller reports progress and checks for Cancel, and each chunk's COCO objects (copies of its
annotations, faster-coco-eval's own tables) are dropped before the next. What ``accumulate``
needs of every image (the per-image results, the IoU matrices) is kept and merged, in COCOeval's
own layout (class, area range, image), into one evaluator over all the images, whose
``accumulate`` then sees exactly what one ``evaluate`` over the whole set would have made.

The matches (``engine.Matches``) are merged too, with the chunk's rows and columns turned into
indices of the whole set's results and annotations; their blocks come chunk by chunk (class,
then image, within a chunk), which is all their users need (each block is self-contained).

From :data:`BY_CLASS_IMAGES` images on, the chunks go class by class (:meth:`Chunked.add_class`:
one class's labels over a span of images) and a class's ``accumulate`` parts run as soon as its
last chunk is evaluated (:meth:`Chunked.accumulate_class`), its per-image results dropped then:
those faster-coco-eval objects (one per class, area range and image: ~0.5 KB each, ~1 GB at
100,000 images of 5 classes) are then held for one class at a time, not for all of them.
"""

from __future__ import annotations

import copy

import numpy as np

from maskreview.core.evaluation import engine

CHUNK_IMAGES = 500  # images per chunk: ~5,000 instances of the bench's 10 per image, ~0.3 s of CPU
BY_CLASS_IMAGES = 20_000  # from this many images on, chunks go class by class (memory; below, fewer calls)
CLASS_CHUNK_LABELS = 5_000  # a class chunk's labels (GTs and results), as many as an image chunk's
CLASS_CHUNK_MAX_IMAGES = 10_000  # and at most this many images (each has a result per area range)


def by_class(n_images: int, n_classes: int) -> bool:
    """Whether to evaluate class by class (:meth:`Chunked.add_class`)."""
    return n_classes > 1 and n_images >= BY_CLASS_IMAGES


def class_spans(counts: np.ndarray, labels: int | None = None, images: int | None = None) -> list[tuple[int, int]]:
    """``[(first, end), ...]`` image positions covering every image, each span holding about
    ``labels`` (:data:`CLASS_CHUNK_LABELS`) of ``counts`` (one class's labels per image; an image
    with more is a span of its own) and at most ``images`` (:data:`CLASS_CHUNK_MAX_IMAGES`) images."""
    labels, images = labels or CLASS_CHUNK_LABELS, images or CLASS_CHUNK_MAX_IMAGES
    n = len(counts)
    if not n:
        return [(0, 0)]
    before = np.cumsum(counts) - counts
    starts = set((np.flatnonzero(np.diff(before // labels)) + 1).tolist()) | set(range(0, n, images))
    bounds = sorted(starts) + [n]
    out = []
    for s0, s1 in zip(bounds, bounds[1:]):
        while s1 - s0 > images:  # (a label-bounded span past the image cap)
            out.append((s0, s0 + images))
            s0 += images
        out.append((s0, s1))
    return out


class Chunked:
    """Collects :meth:`add`'s chunks (in image id order) and :meth:`finish`\\ es into one
    ``engine.Evaluation`` over all of ``gt``'s images."""

    def __init__(self, gt: dict, n_annotations: int, n_results: int, iou_type: str):
        """``gt``: the images and categories of the whole set (its annotations come chunk by chunk)."""
        self.gt, self.iou_type = gt, iou_type
        self.n_gt, self.n_res = n_annotations, n_results
        # the matched annotation ids (ten a result, 5,000,000 at 100,000 images) in 4 bytes when they fit
        self._match_type = np.int32 if n_annotations < 2 ** 31 - 1 else np.int64
        self.areas = np.zeros(n_results, float)
        self.raw_col = np.zeros(self.n_gt, np.int64)
        self.ious: list = []  # per chunk: its blocks' IoU matrices flattened (engine.Evaluation.ious)
        self.per_image: list = []  # per chunk: its flat [class][area range][image] results
        self.n_images: list[int] = []
        self.parts: list[engine.Matches] = []
        self.n_thr = None
        self._last_image = None
        self._whole = None  # the evaluator over every image (its params; accumulate's results)
        self._by_class: dict[int, list] = {}  # class position -> its chunks' (per-image results, images)
        self._out = None  # accumulate's arrays, filled class by class (add_class)

    def add(self, images: list[dict], ann_index: np.ndarray, annotations: list[dict], res_index: np.ndarray,
            results: list[dict], known_ious: dict | None = None) -> dict:
        """Evaluate one chunk: ``images`` (ids above the last chunk's), their annotations and
        results (``ann_index`` / ``res_index``: their positions in the whole set). Returns the
        chunk's IoU matrices (``{(image id, category id): matrix}``)."""
        ids = sorted(im["id"] for im in images)
        if self._last_image is not None and ids and ids[0] <= self._last_image:
            raise ValueError("chunks must come in image id order")
        self._last_image = ids[-1] if ids else self._last_image
        sub = {"images": images, "annotations": annotations, "categories": self.gt["categories"]}
        e = self._evaluate(sub, ann_index, res_index, results, known_ious)
        self.per_image.append(e._evalImgs_cpp)
        self.n_images.append(len(e.params.imgIds))
        return e.ious

    def add_class(self, k: int, images: list[dict], ann_index: np.ndarray, annotations: list[dict],
                  res_index: np.ndarray, results: list[dict], known_ious: dict | None = None) -> dict:
        """Evaluate one chunk of class ``k`` (the position of its category id in COCOeval's
        sorted ``catIds``): ``images`` (a span of the whole set's, in order; a class's chunks
        cover every image, in order), the class's annotations and results in them. Returns the
        chunk's IoU matrices. Once a class's chunks are in, :meth:`accumulate_class`."""
        cat = self.whole().params.catIds[k]
        category = next(c for c in self.gt["categories"] if c["id"] == cat)
        sub = {"images": images, "annotations": annotations, "categories": [category]}
        e = self._evaluate(sub, ann_index, res_index, results, known_ious)
        self._by_class.setdefault(k, []).append((e._evalImgs_cpp, len(e.params.imgIds)))
        return e.ious

    def _evaluate(self, sub: dict, ann_index: np.ndarray, res_index: np.ndarray, results: list[dict],
                  known_ious: dict | None):
        ev = engine.evaluate(sub, results, self.iou_type, known_ious)
        m, e = ev.matches, ev.evaluator
        self.areas[res_index] = ev.areas
        self.raw_col[ann_index] = m.raw_col
        offset = sum(len(p.keys) for p in self.parts)
        self.parts.append(engine.Matches(
            res_index[m.preds], m.block + offset, ann_index[m.gts], m.gt_block + offset, m.gt_ignore, None,
            m.keys, m.dt_matches.astype(self._match_type), m.dt_ignore, m.n_rows, m.n_cols, m.n_thr))
        self.n_thr = m.n_thr
        self.ious.append(engine.flatten_ious(e.ious, m.keys))
        self.params = e.params
        return e

    def whole(self):
        """The evaluator over every image (no annotations: its params, then the results)."""
        if self._whole is None:
            from faster_coco_eval import COCO
            from faster_coco_eval.core.faster_eval_api import COCOeval_faster

            quiet = lambda *args, **kw: None
            coco_gt = COCO()
            coco_gt.print_function = quiet
            coco_gt.dataset = {"images": self.gt["images"], "annotations": [], "categories": self.gt["categories"]}
            coco_gt.createIndex()
            ev = COCOeval_faster(coco_gt, None, self.iou_type, print_function=quiet, separate_eval=True,
                                 rle_iou_max_workers=1)
            p = ev.params
            p.imgIds = list(np.unique(p.imgIds))
            p.catIds = list(np.unique(p.catIds))
            p.maxDets = sorted(p.maxDets)
            ids, p.imgIds = p.imgIds, []  # (numbers: shared as they are; a deep copy of 100,000 was 0.2 s)
            ev._paramsEval = copy.deepcopy(p)
            p.imgIds = ids
            ev._paramsEval.imgIds = list(ids)
            self._whole = ev
        return self._whole

    def accumulate_class(self, k: int, progress=None) -> None:
        """Class ``k``'s ``accumulate`` parts (one per area range, progress and Cancel between),
        from its chunks' per-image results, which are dropped then."""
        p = self.whole()._paramsEval
        got = self._by_class.pop(k, [])
        n_img, n_area = len(p.imgIds), len(p.areaRng)
        if sum(n for _, n in got) != n_img:
            raise RuntimeError("a class's chunks do not cover the images of the whole set")
        for a in range(n_area):
            flat = [o for per_image, n in got for o in per_image[a * n:(a + 1) * n]]
            self._out = _accumulate_part(p, k, a, flat, self._out)
            if progress is not None:
                progress.advance()
                progress.check()

    def finish(self) -> engine.Evaluation:
        """One evaluator over every image, ready for ``engine.accumulate`` (by class: accumulated)."""
        ev = self.whole()
        p = ev.params
        if self._out is not None or self._by_class:  # by class
            if self._by_class:
                raise RuntimeError("a class's chunks were not accumulated")
            ev.eval, ev._evalImgs_cpp = self._out, []
            matches = self._matches(p)
            return engine.Evaluation(ev, self.areas, matches, accumulated=True, ious=self._flat_ious())
        if self.parts and (p.catIds != list(self.params.catIds) or len(p.imgIds) != sum(self.n_images)):
            raise RuntimeError("the chunks do not cover the images and categories of the whole set")
        n_cls, n_area = len(p.catIds), len(p.areaRng)
        merged = []
        for k in range(n_cls):  # COCOeval's layout: class, area range, image
            for a in range(n_area):
                for flat, n in zip(self.per_image, self.n_images):
                    start = (k * n_area + a) * n
                    merged.extend(flat[start:start + n])
        self.per_image = []
        ev._evalImgs_cpp = merged
        matches = self._matches(p)
        return engine.Evaluation(ev, self.areas, matches, ious=self._flat_ious())

    def _flat_ious(self) -> np.ndarray:
        flat, self.ious = self.ious, []
        return _joined(flat, float)

    def _matches(self, p) -> engine.Matches:
        parts = self.parts

        def cat(name, dtype):  # each part's array let go of once copied
            pieces = [getattr(q, name) for q in parts]
            for q in parts:
                setattr(q, name, None)
            return _joined(pieces, dtype)

        keys = cat("keys", np.int64).reshape(-1, 2)
        matches = engine.Matches(
            cat("preds", np.int64), cat("block", np.int64), cat("gts", np.int64), cat("gt_block", np.int64),
            cat("gt_ignore", bool), self.raw_col, keys, cat("dt_matches", self._match_type),
            cat("dt_ignore", bool), cat("n_rows", np.int64), cat("n_cols", np.int64), self.n_thr or len(p.iouThrs))
        self.parts = []
        return matches


def _joined(pieces: list, dtype) -> np.ndarray:
    """``np.concatenate(pieces)`` raveled, as ``dtype``, each piece let go of (from ``pieces``) once it is
    copied: at 100,000 images the chunks' matches and IoUs are ~0.1 GB, held twice over (three
    times with a cast after the concatenation) at the end of COCOeval, where a run's RSS peaked."""
    out = np.empty(sum(np.size(x) for x in pieces), dtype)
    at = 0
    for i, x in enumerate(pieces):
        n = np.size(x)
        out[at:at + n] = np.ravel(x)
        at += n
        pieces[i] = None
    return out


def image_chunks(n_images: int, size: int | None = None) -> list[tuple[int, int]]:
    """``[(first, end), ...]`` image positions, ``size`` (:data:`CHUNK_IMAGES`) at a time."""
    size = size or CHUNK_IMAGES
    return [(s, min(s + size, n_images)) for s in range(0, n_images, size)] or [(0, 0)]


ACCUMULATE_WHOLE = 50_000  # per-image results up to which accumulate is one C++ call (~0.06 s CPU), no
# progress between parts: each part costs its own call (the params, every image id, converted again; its
# arrays): the bench's 1,000 images, 20,000 results, 40 ms CPU in 20 parts, 24 ms in one call


def accumulate(evaluation: engine.Evaluation, progress=None):
    """``engine.accumulate`` (COCOeval's ``accumulate`` and ``summarize``), with progress and
    Cancel between parts: one C++ ``accumulate`` call per (category, area range), as COCOeval's
    own loop runs them (each part sees only its own per-image results), its arrays put in their
    place in the whole one's. At 1,000,000 labels one call is ~10 s with no progress.
    The same numbers (``tests/test_evaluation_chunks.py``)."""
    ev = evaluation.evaluator
    if evaluation.accumulated:  # (class by class, as its chunks were evaluated: Chunked.add_class)
        ev.matched = False
        ev.summarize()
        return ev
    p = getattr(ev, "_paramsEval", None)
    flat = getattr(ev, "_evalImgs_cpp", None)
    n_cls, n_area = (len(p.catIds), len(p.areaRng)) if p is not None else (0, 0)
    if progress is None or flat is None or n_cls * n_area <= 1 or not getattr(ev, "separate_eval", False):
        return engine.accumulate(evaluation)
    n_img = len(p.imgIds)
    if len(flat) != n_cls * n_area * n_img:
        return engine.accumulate(evaluation)
    if len(flat) <= ACCUMULATE_WHOLE:
        engine.accumulate(evaluation)
        ev._evalImgs_cpp = []
        return ev
    progress.total = max(progress.total, progress.done + n_cls * n_area + 1)
    out = None
    for k in range(n_cls):
        for a in range(n_area):
            start = (k * n_area + a) * n_img
            out = _accumulate_part(p, k, a, flat[start:start + n_img], out)
            progress.advance()
            progress.check()
    ev.eval = out
    ev.matched = False  # (FiftyOne-free extra matching: engine.evaluate does not ask for it)
    ev.summarize()
    ev._evalImgs_cpp = []  # accumulated: nothing reads them again (100,000 images: ~2,000,000 of them)
    return ev


def _accumulate_part(p, k: int, a: int, per_image: list, out: dict | None) -> dict:
    """faster-coco-eval's C++ ``accumulate`` of class ``k`` and area range ``a`` alone (its
    ``per_image`` results, one per image), its arrays put in their place in ``out`` (made at
    the first part, shaped for every class and area range of ``p``)."""
    from faster_coco_eval.core.faster_eval_api import _C

    n_cls, n_area = len(p.catIds), len(p.areaRng)
    part = copy.copy(p)
    part.catIds, part.areaRng, part.areaRngLbl = [p.catIds[k]], [p.areaRng[a]], [p.areaRngLbl[a]]
    got = _C.COCOevalAccumulate(part, per_image)
    if out is None:
        out = {"params": p, "counts": [got["counts"][0], got["counts"][1], n_cls, n_area, got["counts"][4]],
               "date": got.get("date")}
        for name in ("precision", "scores"):
            shape = list(got[name].shape)
            shape[2], shape[3] = n_cls, n_area
            out[name] = np.full(shape, -1.0, got[name].dtype)
        shape = list(got["recall"].shape)
        shape[1], shape[2] = n_cls, n_area
        out["recall"] = np.full(shape, -1.0, got["recall"].dtype)
    out["precision"][:, :, k, a] = got["precision"][:, :, 0, 0]
    out["scores"][:, :, k, a] = got["scores"][:, :, 0, 0]
    out["recall"][:, k, a] = got["recall"][:, 0, 0]
    return out
