"""The review state without a window (#14): filters, order, Show all, the one visibility rule,
selection, and the evaluation at the state's thresholds (sorts and drill-downs)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers_coco import perturbed_demo
from maskreview.core.review import LabelRef, ReviewState
from maskreview.core.review import evaluation as rev


def _state(n: int = 6) -> ReviewState:
    state = ReviewState()
    state.set_dataset(None, [f"s{i}" for i in range(n)], [f"img{i}.png" for i in range(n)], ("gt", "pred"))
    return state


def test_filters_and_order_make_the_view():
    state = _state()
    state.filters.sort(["s4", "s1"], "most false positives")
    assert state.visible_sample_ids() == ["s4", "s1", "s0", "s2", "s3", "s5"]  # unranked keep the dataset's order
    state.filters.restrict("tag", ["s1", "s2", "s5"], "tag reviewed")
    assert state.visible_sample_ids() == ["s1", "s2", "s5"]
    state.filters.search = "img5"
    assert state.visible_sample_ids() == ["s5"]
    assert "tag reviewed" in state.filters.describe() and "most false positives" in state.filters.describe()


def test_show_all_resets_every_filter_in_one_go_and_keeps_the_current_sample():
    state = _state()
    state.current_sample = "s3"
    state.filters.search = "img"
    state.filters.tag = "reviewed"
    state.filters.label_class = ("gt", "circle")
    state.drill_down(["s3"], ["l1"], "GT circle → predicted square")
    state.filters.sort(["s3"], "worst F1 first")
    seen = []
    state.filters.events.all.connect(lambda info: seen.append(info.signal.name))
    state.show_all()
    f = state.filters
    assert (f.search, f.tag, f.label_class, f.sample_ids, f.label_ids, f.order) == ("", None, None, {}, None, None)
    assert not f.active and state.visible_sample_ids() == list(state.sample_ids)
    assert state.current_sample == "s3"
    assert len(seen) == len(set(seen))  # one emission per field that changed (paused, then resumed)


def test_one_visibility_rule():
    state = _state()
    assert state.label_visible("pred", "square", 0.6) and not state.label_visible("pred", "square", 0.4)
    assert state.label_visible("gt", "square", None)  # ground truth has no score
    state.thresholds.confidence = 0.3
    assert state.label_visible("pred", "square", 0.4)
    state.display.hidden_fields = frozenset({"pred"})
    assert not state.label_visible("pred", "square", 0.9) and state.visible_fields() == ["gt"]
    state.display = type(state.display)()
    state.drill_down(["s0"], ["a"], "a cell")
    assert state.label_visible("pred", "square", 0.01, "a")  # a drill-down shows its labels whatever their score
    assert not state.label_visible("pred", "square", 0.99, "b")
    state.display.hidden_classes = frozenset({"square"})
    assert not state.label_visible("pred", "square", 0.01, "a")


def test_selection_is_one_label_and_goes_with_its_sample():
    state = _state()
    changes = []
    state.events.selection.connect(lambda new, old: changes.append(new))
    state.set_current_sample("s0")
    state.select(LabelRef("s0", "pred", "p1"))
    state.hover = LabelRef("s0", "gt", "g1")
    assert state.selection.label_id == "p1"  # hovering does not move the selection
    state.set_current_sample("s1")
    assert state.selection is None and state.hover is None
    assert changes == [LabelRef("s0", "pred", "p1"), None]


def test_new_dataset_starts_afresh():
    state = _state()
    state.drill_down(["s1"], ["x"], "cell")
    state.select(LabelRef("s1", "gt", "x"))
    state.set_dataset(None, ["t0"], ["a.png"])
    assert not state.filters.active and state.selection is None and state.visible_sample_ids() == ["t0"]


@pytest.fixture(scope="module")
def evaluated(demo_coco):
    from maskreview.core.evaluation import results as R

    with perturbed_demo(demo_coco, "review-state-tests", seed=4) as dataset:
        yield dataset, R.compute(dataset)


def test_evaluation_at_the_state_threshold_counts_and_shows_the_same_labels(evaluated):
    from maskreview.core.evaluation import analysis

    _, results = evaluated
    state = ReviewState()
    conf, iou = state.thresholds.confidence, state.thresholds.iou
    shown = rev.at_thresholds(results, analysis.rematch_dataset(results, conf, iou))
    scores = dict(zip(results.pred.label_id, results.pred.score))
    confusion = analysis.confusion(shown)
    total = 0
    for (r, c), (gts, preds) in confusion.members.items():
        _, labels = confusion.cell_ids(r, c)
        for label in labels:  # every prediction a cell counts is one the canvas shows at this threshold
            if label in scores:
                assert state.label_visible("predictions", "x", scores[label], None)
        total += len(preds)
    counted = int(np.sum(np.isin(shown.pred.outcome, ["tp", "fp"])))
    assert total == counted  # each prediction on screen is in exactly one cell
    assert (results.pred.score < conf).any()  # the threshold leaves some out: the check above is not vacuous
    at_zero = analysis.confusion(results)
    assert int(at_zero.matrix.sum()) > int(confusion.matrix.sum())


def test_sort_orders_at_the_state_threshold(evaluated):
    from maskreview.core.evaluation import analysis

    _, results = evaluated
    rematch = analysis.rematch_dataset(results, 0.5, 0.5)
    shown = rev.at_thresholds(results, rematch)
    index = {sid: i for i, sid in enumerate(results.sample_ids)}
    for by in ("fp", "fn"):
        counts = rematch.per_sample[by]
        order = [counts[index[s]] for s in rev.sample_order(shown, by)]
        assert order == sorted(order, reverse=True) and order[0] > order[-1]
    ious = []
    for sid in rev.sample_order(shown, "iou"):
        rows = (shown.pred.img == index[sid]) & (shown.pred.outcome == "tp")
        ious.append(float(shown.pred.iou[rows].mean()) if rows.any() else np.inf)
    finite = [v for v in ious if np.isfinite(v)]
    assert finite == sorted(finite) and len(finite) > 1
