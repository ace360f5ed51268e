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
