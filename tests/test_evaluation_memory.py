"""What an evaluation's tables hold per label: shared objects where a value repeats (at
1,000,000 labels every object a label is ~50 MB, and a Cancel frees them with the GIL held)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_coco import perturbed_demo

from maskreview.core.evaluation import compute
from maskreview.core.evaluation.outcomes import OUTCOMES


@pytest.fixture(scope="module")
def demo(demo_coco):
    with perturbed_demo(demo_coco, "eval-memory", seed=5) as dataset:
        yield dataset


@pytest.mark.parametrize("iou_thresh", [0.5, 0.6])  # COCOeval's own matches, and the greedy rule
def test_outcomes_are_shared_strings(demo, iou_thresh):
    res = compute(demo.view(), iou_thresh=iou_thresh, reuse=False)
    for table in (res.gt, res.pred):
        assert {"tp"} < set(table.outcome.tolist()) <= set(OUTCOMES.tolist())
        assert {id(x) for x in table.outcome} <= {id(x) for x in OUTCOMES}, table.outcome[:8]


def test_a_kept_entry_holds_its_boxes_and_scores_as_arrays(demo):
    from maskreview.core.evaluation import cache

    cache.clear()
    res = compute(demo.view())
    kept = [e for e in res.entries if e.kept]
    assert kept
    for e in kept:
        for rows in e.rows:  # one array a sample, not a list of 4 floats and a float a label
            n = len(rows.oids)
            assert isinstance(rows.boxes, np.ndarray) and rows.boxes.shape == (n, 4), rows.boxes
            assert isinstance(rows.scores, np.ndarray) and rows.scores.shape == (n,), rows.scores
    again = compute(demo.view())  # from the cache: the same detections
    assert again.pred.score.tolist() == res.pred.score.tolist() and np.array_equal(again.pred.area, res.pred.area)


def test_the_chunks_pieces_are_let_go_of_as_they_are_joined():
    from maskreview.core.evaluation.chunks import _joined

    pieces = [np.arange(3), np.arange(4).reshape(2, 2), np.zeros(0, np.int64)]
    want = np.concatenate([np.ravel(x) for x in pieces]).astype(float)
    got = _joined(pieces, float)
    assert got.dtype == float and np.array_equal(got, want)
    assert pieces == [None, None, None]  # (each dropped once copied: not held twice over at the end)
    assert _joined([], np.int64).shape == (0,)


def _reachable(root, kind) -> int:
    """How many objects of ``kind`` (a type, or a test of an object) can be reached from
    ``root`` (``gc.get_referents``)."""
    import gc
    import types

    seen, todo, found = set(), [root], 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType)):
            continue
        seen.add(id(obj))
        found += bool(kind(obj)) if isinstance(kind, types.FunctionType) else isinstance(obj, kind)
        todo.extend(gc.get_referents(obj))
    return found


def test_the_results_hold_no_objectid_a_label(demo):
    from bson import ObjectId

    res = compute(demo.view(), reuse=False)  # (no cache entry keeps its labels)
    # the label ids are strs; an update made ObjectIds of them only where they guard it
    assert len(res.pred) and _reachable(res, ObjectId) == 0


def test_a_class_iou_matrices_are_let_go_of_once_it_is_evaluated(demo, monkeypatch):
    import weakref

    from maskreview.core.evaluation import chunks, results as evaluation_results

    monkeypatch.setattr(chunks, "CHUNK_IMAGES", 5)
    monkeypatch.setattr(chunks, "BY_CLASS_IMAGES", 0)  # class by class
    made = []  # (category id, the matrix) of every IoU matrix made before COCOeval
    block_ious = evaluation_results.block_ious

    def recorded(*args, **kw):
        got = block_ious(*args, **kw)
        made.extend((cat, weakref.ref(ious)) for (_, cat), ious in got.items())
        return got

    alive = {}  # category id -> the categories whose matrices are alive as it is accumulated
    accumulate_class = chunks.Chunked.accumulate_class

    def accumulated(self, k, progress=None):
        alive[self.whole().params.catIds[k]] = {cat for cat, ref in made if ref() is not None}
        return accumulate_class(self, k, progress)

    monkeypatch.setattr(evaluation_results, "block_ious", recorded)
    monkeypatch.setattr(chunks.Chunked, "accumulate_class", accumulated)
    compute(demo.view(), reuse=False)
    order = list(alive)
    assert len(order) > 1 and made
    for i, cat in enumerate(order):  # none of a class evaluated before is held any more
        assert not alive[cat] & set(order[:i]), (cat, alive[cat])


def _label_dicts(root) -> int:
    """COCO annotation or result dicts (one a label) reachable from ``root``."""
    return _reachable(root, lambda obj: isinstance(obj, dict) and "category_id" in obj)


def test_a_run_holds_no_coco_dict_a_label_through_cocoeval(demo, monkeypatch):
    # the annotations and results are columns; each chunk's dicts are made as it is evaluated
    # (at 1,000,000 labels the dicts of all of them were ~0.4 GB, held to the end of the run)
    from maskreview.core.evaluation import chunks, coco

    monkeypatch.setattr(chunks, "CHUNK_IMAGES", 5)
    monkeypatch.setattr(chunks, "BY_CLASS_IMAGES", 0)  # class by class
    read = coco.coco_inputs
    held = []  # what the run holds from its reading on

    def reading(*args, **kwargs):
        held.append(read(*args, **kwargs))
        return held[-1]

    counted = []
    accumulate_class = chunks.Chunked.accumulate_class

    def accumulated(self, k, progress=None):
        counted.append(_label_dicts(held))
        return accumulate_class(self, k, progress)

    monkeypatch.setattr(coco, "coco_inputs", reading)
    monkeypatch.setattr(chunks.Chunked, "accumulate_class", accumulated)
    res = compute(demo.view(), reuse=False)
    assert len(res.gt) and len(counted) > 1
    assert counted == [0] * len(counted)
    assert _label_dicts(res) == 0


@pytest.mark.parametrize("by_class", [False, True])
def test_the_chunks_matched_ids_are_four_bytes(demo, monkeypatch, by_class):
    # ten a result: 5,000,000 at 100,000 images, 40 MB as int64, held twice over as they are joined
    from maskreview.core.evaluation import chunks

    monkeypatch.setattr(chunks, "CHUNK_IMAGES", 5)
    if by_class:
        monkeypatch.setattr(chunks, "BY_CLASS_IMAGES", 0)
    res = compute(demo.view(), reuse=False)
    matches = res.evaluation.matches
    assert matches.dt_matches.dtype == np.int32 and len(matches.dt_matches) == matches.n_thr * len(matches.preds)
    assert (res.pred.outcome == "tp").any()
