"""The review queue (core/review/queue.py), its verdicts as edits (verdicts.py) and boundary-error
pixels (pair_diff.py), on crafted scenes with one known error of each kind."""

from __future__ import annotations

import numpy as np
import pytest

from helpers_review import SIZE, make_dataset, scenes

from maskreview.core.evaluation import results as R
from maskreview.core.review import pair_diff, queue, verdicts


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    from maskreview.core.store import connect

    fo = connect()
    dataset = make_dataset(fo, tmp_path_factory.mktemp("crafted"), "review-queue-crafted")
    yield dataset, R.compute(dataset)
    dataset.delete()


def _kinds(q):
    return [(e.kind, e.label) for e in q.entries]


def test_missing_label_bad_boundary_and_class_swap_rank_first(crafted):
    dataset, results = crafted
    q = queue.build_queue(results)
    assert {e.kind for e in q.entries[:3]} == {"missing", "boundary", "class"}, _kinds(q)
    assert q.entries[3].kind == "spurious"
    assert all(e.kind == "ok" for e in q.entries[4:])
    # every ground truth once, plus the missing label's prediction
    assert len(q) == sum(len(g) for _, g, _ in scenes()) + 1
    swap = next(e for e in q.entries if e.kind == "class")
    assert (swap.label, swap.suggested_label) == ("square", "circle")
    boundary = next(e for e in q.entries if e.kind == "boundary")
    assert boundary.iou > 0.5 and boundary.biou < 0.5  # matched, and the outline is wrong
    missing = q.entries[0]
    assert missing.kind == "missing" and missing.field == "predictions" and missing.on_prediction
    scores = [e.score for e in q.entries]
    assert scores == sorted(scores, reverse=True)
    assert all(e.reason for e in q.entries)


def test_queue_covers_only_the_view(crafted):
    dataset, results = crafted
    ids = dataset.values("id")
    q = queue.build_queue(results, sample_ids=[ids[2], ids[0]])
    assert {e.sample_id for e in q.entries} == {ids[0], ids[2]}
    assert "missing" not in {e.kind for e in q.entries}  # it is in the sample left out


def test_boxes_alone_cannot_see_a_wrong_outline_inside_the_right_box(crafted):
    """cleanlab's object-detection scores on the same scenes (boxes; its high-probability threshold
    at 0.9 so the same predictions count): its overlooked and swap scores flag our missing label
    and class swap too, but its bad-location score rates the bad-boundary label as the cleanest
    of its image, where the mask-aware queue ranks it among the first."""
    rank = pytest.importorskip("cleanlab.object_detection.rank")
    from maskreview.core.masks import mask_bbox

    classes = ["circle", "square"]

    def xyxy(m):
        x, y, w, h = mask_bbox(m)
        return [x, y, x + w, y + h]

    labels, predictions = [], []
    for _, gts, preds in scenes():
        labels.append({"bboxes": np.array([xyxy(m) for _, m in gts], float).reshape(-1, 4),
                       "labels": np.array([classes.index(c) for c, _ in gts])})
        predictions.append([np.array([xyxy(m) + [s] for c, m, s in preds if c == k], float).reshape(-1, 5)
                            for k in classes])
    badloc = rank.compute_badloc_box_scores(labels=labels, predictions=predictions)
    swap = rank.compute_swap_box_scores(labels=labels, predictions=predictions, high_probability_threshold=0.9)
    overlooked = rank.compute_overlooked_box_scores(labels=labels, predictions=predictions,
                                                    high_probability_threshold=0.9)
    assert swap[1][0] < 0.1  # the swapped square
    # cleanlab lists predictions by class: the swapped circle, the missing circle, the square
    assert np.nanmin(overlooked[1]) < 0.1 and np.nanargmin(overlooked[1]) == 1
    assert int(np.argmax(badloc[0])) == 2  # the wrong outline looks like the best-located label
    q = queue.build_queue(crafted[1])
    boundary_rank = [e.kind for e in q.entries].index("boundary")
    assert boundary_rank < 3


def test_boundary_error_pixels_are_the_xor_of_the_pair():
    rng = np.random.default_rng(0)
    for _ in range(20):
        gt = rng.random((SIZE, SIZE)) < 0.5
        pred = rng.random((SIZE, SIZE)) < 0.5
        gt[: rng.integers(0, 40)] = False
        pred[:, rng.integers(120, SIZE):] = False
        gx, gy, pxs, pys = (int(v) for v in rng.integers(0, 30, 4))
        gt_placed = (gx, gy, gt[gy:gy + 100, gx:gx + 110])
        pred_placed = (pxs, pys, pred[pys:pys + 90, pxs:pxs + 120])
        d = pair_diff.pair_diff(gt_placed, pred_placed, SIZE, SIZE)
        missed, added = d.full(SIZE, SIZE)
        g, p = np.zeros((SIZE, SIZE), bool), np.zeros((SIZE, SIZE), bool)
        g[gy:gy + 100, gx:gx + 110] = gt_placed[2]
        p[pys:pys + 90, pxs:pxs + 120] = pred_placed[2]
        assert np.array_equal(missed | added, g ^ p)
        assert np.array_equal(missed, g & ~p) and np.array_equal(added, p & ~g)
        assert d.iou == pytest.approx((g & p).sum() / (g | p).sum())


def test_pair_diff_carries_the_boundary_iou_evaluation_stores(crafted):
    _, results = crafted
    p = int(np.flatnonzero(results.pred.match >= 0)[0])
    g = int(results.pred.match[p])
    img = int(results.pred.img[p])
    d = pair_diff.pair_diff(results.gt_masks[g], results.pred_masks[p], int(results.heights[img]),
                            int(results.widths[img]))
    assert d.biou == pytest.approx(results.pred.biou[p])
    assert d.iou == pytest.approx(results.pred.iou[p])


def test_verdicts_are_journaled_undoable_edits(crafted, tmp_path):
    from maskreview.core.editing.session import EditSession

    dataset, results = crafted
    q = queue.build_queue(results)
    by_kind = {e.kind: e for e in q.entries}
    reviewed_before, total_before = verdicts.label_progress(dataset, ["ground_truth"])
    with EditSession(dataset, journal_root=tmp_path) as session:
        changes = session.apply_many(verdicts.verdict_ops(by_kind["class"], "fix_class"))
        labels = {d.id: d for d in dataset.values("ground_truth.detections", unwind=True)}
        fixed = labels[by_kind["class"].label_id]
        assert fixed.label == "circle" and "reviewed" in fixed.tags
        assert verdicts.label_progress(dataset, ["ground_truth"]) == (reviewed_before + 1, total_before)
        for change in reversed(changes):
            session.write(change.inverse())
        labels = {d.id: d for d in dataset.values("ground_truth.detections", unwind=True)}
        assert labels[by_kind["class"].label_id].label == "square"
        assert verdicts.label_progress(dataset, ["ground_truth"]) == (reviewed_before, total_before)

        # accepting a missing label adds it to the ground truth; rejecting a ground truth deletes it
        session.apply_many(verdicts.verdict_ops(by_kind["missing"], "accept", gt_field="ground_truth"))
        session.apply_many(verdicts.verdict_ops(by_kind["spurious"], "reject"))
        gts = dataset.values("ground_truth.detections", unwind=True)
        assert by_kind["spurious"].label_id not in {d.id for d in gts}
        source = by_kind["missing"].label_id
        promoted = [d for d in gts if d.has_field("source_label_id") and d["source_label_id"] == source]
        assert len(promoted) == 1 and "reviewed" in promoted[0].tags
        preds = {d.id: d for d in dataset.values("predictions.detections", unwind=True)}
        assert "reviewed" in preds[by_kind["missing"].label_id].tags
        assert verdicts.label_progress(dataset, ["ground_truth"]) == (reviewed_before + 1, total_before)


def test_rejecting_a_prediction_tags_it_a_false_positive(crafted):
    _, results = crafted
    missing = next(e for e in queue.build_queue(results).entries if e.kind == "missing")
    (op,) = verdicts.verdict_ops(missing, "reject")
    assert set(op.tags) == {"fp", "reviewed"} and op.labels[0].label_id == missing.label_id
    assert verdicts.verdict_ops(missing, "skip") == []


def test_verdict_keys_are_configurable(tmp_path):
    path = tmp_path / "verdict_keys.json"
    assert verdicts.load_verdict_keys(path) == verdicts.DEFAULT_VERDICT_KEYS
    verdicts.save_verdict_keys({"accept": "Space"}, path)
    assert verdicts.load_verdict_keys(path)["accept"] == "Space"
    path.write_text('{"accept": "X"}')  # X is reject's
    with pytest.raises(verdicts.BadInputError, match="share a key"):
        verdicts.load_verdict_keys(path)
    path.write_text('{"approve": "A"}')
    with pytest.raises(verdicts.BadInputError, match="verdict key map"):
        verdicts.load_verdict_keys(path)
