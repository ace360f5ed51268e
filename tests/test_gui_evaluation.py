"""Evaluation panels offscreen: confusion cell clicks carry exact ids, tables sort, sliders re-match."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from helpers_coco import perturbed_demo

from maskreview.core.evaluation import analysis, results as R
from maskreview.gui.panels.evaluation import EvaluationDock


@pytest.fixture(scope="module")
def evaluated(demo_coco):
    with perturbed_demo(demo_coco, "gui-eval-tests", seed=4) as dataset:
        yield dataset, R.compute(dataset)


@pytest.fixture
def dock(qtbot, evaluated):
    from maskreview.core.review import ReviewState, Thresholds

    w = EvaluationDock(state=ReviewState(thresholds=Thresholds(confidence=0.0)))  # counts at 0, as COCO's
    qtbot.addWidget(w)
    w.resize(900, 700)
    w.show()
    w.set_results(evaluated[1])
    qtbot.waitUntil(lambda: w.summary.text("TP") != "–", timeout=20000)
    return w


def test_summary_and_pr(dock, evaluated):
    res = evaluated[1]
    assert dock.summary.text("mAP") == f"{res.summary['mAP']:.3f}"
    assert int(dock.summary.text("TP")) == int((res.pred.outcome == "tp").sum())
    assert dock.pr.plot is None  # the PR tab not shown yet: no plot made (pyqtgraph is slow to import)
    dock.tabs.setCurrentWidget(dock.pr)
    assert dock.pr.plot is not None and set(dock.pr.curves) == set(res.classes)


def test_confusion_cell_click_emits_exact_ids(qtbot, dock, evaluated):
    res = evaluated[1]
    conf = dock.confusion
    k = len(res.classes)
    r, c = next((r, c) for r in range(k) for c in range(k) if r != c and conf.matrix[r, c])
    dock.tabs.setCurrentWidget(dock.confusion_view)
    view = dock.confusion_view
    view.scrollToItem(view.item(r, c))
    rect = view.visualItemRect(view.item(r, c))
    with qtbot.waitSignal(dock.filter_requested, timeout=5000) as blocker:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    samples, labels, _ = blocker.args
    expected = conf.cell_ids(r, c)
    assert (samples, labels) == (expected[0], expected[1])
    gt_ids = set(res.gt.label_id[(res.gt.cls == r)])
    pred_ids = set(res.pred.label_id[(res.pred.cls == c)])
    assert set(labels) <= gt_ids | pred_ids and set(labels) & gt_ids and set(labels) & pred_ids
    # the background column holds the missed GT of that class
    r = next(r for r in range(k) if conf.matrix[r, k])
    view.scrollToItem(view.item(r, k))
    rect = view.visualItemRect(view.item(r, k))
    with qtbot.waitSignal(dock.filter_requested, timeout=5000) as blocker:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    labels = blocker.args[1]
    assert len(labels) == conf.matrix[r, k] and set(labels) <= set(res.gt.label_id[res.gt.outcome == "fn"])


def test_class_table_sorts(qtbot, dock, evaluated):
    table = dock.class_table
    dock.tabs.setCurrentIndex(0)
    header = table.horizontalHeader()
    col = table.COLUMNS.index("AP")

    def click_header():
        pos = QPoint(header.sectionViewportPosition(col) + header.sectionSize(col) // 2, header.height() // 2)
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=pos)

    click_header()
    first = [float(v) for v in table.column_values("AP")]
    click_header()
    second = [float(v) for v in table.column_values("AP")]
    assert sorted(first) in (first, first[::-1]) and second == first[::-1] and first != second
    table.sortByColumn(table.COLUMNS.index("support"), Qt.SortOrder.DescendingOrder)
    supports = [int(v) for v in table.column_values("support")]
    assert supports == sorted(supports, reverse=True)


def test_groups_sort_and_sliders(qtbot, dock, evaluated):
    dataset, res = evaluated
    item = dock.groups.find("small")
    with qtbot.waitSignal(dock.filter_requested, timeout=5000) as blocker:
        dock.groups.itemClicked.emit(item, 0)
    group = next(g for g in analysis.failure_groups(res) if g.name == "small")
    assert blocker.args[0] == group.sample_ids and blocker.args[1] == group.label_ids
    with qtbot.waitSignal(dock.sort_requested, timeout=5000) as blocker:
        dock.sort_box.setCurrentIndex(2)  # most false negatives
    assert blocker.args[0] == analysis.sample_order(res, "fn")

    sample = dataset.first()
    outcomes = dock.set_current_sample(sample)
    i = res.sample_ids.index(sample.id)
    for row in np.flatnonzero(res.pred.img == i):
        assert outcomes[res.pred.label_id[row]] == res.pred.outcome[row]
    with qtbot.waitSignal(dock.sample_outcomes_changed, timeout=5000) as per_sample, \
            qtbot.waitSignal(dock.rematched, timeout=30000) as figures:
        dock.conf_slider.setValue(100)  # synthetic scores are all below 1.0
    assert all(o in ("below", "fn", "ignored") for o in per_sample.args[1].values())
    qtbot.waitUntil(lambda: dock.summary.text("TP") == "0", timeout=30000)
    assert figures.args[0].totals["FN"] == int((res.gt.outcome != "ignored").sum()) or figures.args[0].conf_thresh < 1
    assert int(dock.summary.text("TP")) == figures.args[0].totals["TP"]


def test_sort_box_follows_the_state_and_a_new_evaluation_drops_the_old_rematch(qtbot, dock, evaluated):
    from dataclasses import replace

    from maskreview.gui.panels.evaluation.dock import SORTS

    state = dock.state
    qtbot.waitUntil(lambda: state.rematch is not None, timeout=30000)
    dock.sort_box.setCurrentIndex(1)  # most false positives
    assert state.filters.order_name == SORTS[1][0]
    state.show_all()  # Clear filters elsewhere (the browser): the box no longer claims a sort
    assert dock.sort_box.currentIndex() == 0 and state.filters.order is None
    state.filters.sort(list(reversed(evaluated[1].sample_ids)), SORTS[3][0])  # worst F1 first, set elsewhere
    assert dock.sort_box.currentIndex() == 3

    old = state.rematch
    again = replace(evaluated[1], sample_ids=list(evaluated[1].sample_ids))  # a new evaluation (another object)
    again._blocks = evaluated[1]._blocks
    dock.set_results(again)
    assert state.evaluation is again and state.rematch is not old  # never the old evaluation's counts with the new
    qtbot.waitUntil(lambda: state.rematch is not None, timeout=30000)


def test_clear_filters_elsewhere_unselects_the_confusion_cell(qtbot, dock, evaluated):
    state = dock.state
    dock.filter_requested.connect(state.drill_down)  # as the window's evaluation feature connects it
    qtbot.waitUntil(lambda: dock.confusion is not None, timeout=30000)
    conf = dock.confusion
    r, c = next((r, c) for r in range(len(conf.labels)) for c in range(len(conf.labels)) if conf.matrix[r, c] and r != c)
    dock.confusion_view.setCurrentCell(r, c)
    dock.confusion_view.cellClicked.emit(r, c)
    assert "evaluation" in state.filters.sample_ids and dock.confusion_view.selectedItems()
    state.show_all()  # the browser's Clear filters
    assert not dock.confusion_view.selectedItems() and dock.confusion_view.currentItem() is None
    item = dock.groups.find("small")
    dock.groups.setCurrentItem(item)
    dock.groups.itemClicked.emit(item, 0)
    assert dock.groups.selectedItems()
    state.drill_down(None, None, "")
    assert not dock.groups.selectedItems()


def test_counts_shown_are_at_the_sliders_thresholds(qtbot, evaluated):
    """Right after an evaluation (or a slider move) the class table and the totals wait for the
    re-match at the sliders' thresholds: the evaluation's own outcomes, at confidence 0, never
    stand under a slider at 0.5 (seen at 8,000 samples: FP 8000 for a class with 4,217
    predictions above 0.5, for seconds)."""
    from maskreview.core.review import ReviewState, Thresholds

    res = evaluated[1]
    w = EvaluationDock(state=ReviewState(thresholds=Thresholds(confidence=0.5)))
    qtbot.addWidget(w)
    w.show()
    w.set_results(res)
    assert set(w.class_table.column_values("FP")) == {"…"} and w.summary.text("TP") == "–"
    qtbot.waitUntil(lambda: w.summary.text("TP") != "–", timeout=30000)
    expected = {row["class"]: row for row in analysis.rematch_dataset(res, 0.5, res.iou_thresh).per_class}
    names = w.class_table.column_values("class")
    for column in ("TP", "FP", "FN"):
        assert [int(v) for v in w.class_table.column_values(column)] == [expected[n][column] for n in names]

