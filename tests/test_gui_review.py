"""One review state in the real window (#14): the panels agree on what is shown and selected.

Each test is a defect a reviewer met: Delete acting on a label the panel did not describe, a sort
that left the grid alone, a drill-down counted at one confidence and drawn at another, "Show
all" leaving filters on, a histogram of the whole dataset under a filter, no evaluation after a
restart (and stale stored TP/FP on hover).
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication

from helpers_coco import perturbed_demo
from helpers_gui import open_window

GT, PRED = "ground_truth", "predictions"


@pytest.fixture
def evaluated_window(qtbot, fo, demo_coco, tmp_path, monkeypatch):
    """A window on the perturbed demo, evaluated (stored under 'eval'); the canvas at its default
    confidence threshold (0.5)."""
    from maskreview.gui import integration

    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    with perturbed_demo(demo_coco, f"review-{tmp_path.name}", seed=5) as dataset:
        win = open_window(qtbot, tmp_path, dataset, (1400, 900))
        with qtbot.waitSignal(win.evaluation.results_changed, timeout=120000):
            assert integration.evaluate(win) is not None
        _settled(qtbot, win)
        yield win
        win.close()


def _settled(qtbot, win):
    dock = win.evaluation
    qtbot.waitUntil(lambda: not win.jobs and (dock._rematch_job is None or not dock._rematch_job.isRunning()),
                    timeout=60000)


def _at(win, x, y):
    return win.canvas.mapFromScene(QPointF(x, y))


def _rematch(win):
    from maskreview.core.evaluation.analysis import rematch_dataset

    results = win.evaluation.results
    return rematch_dataset(results, win.canvas.style.conf_threshold, results.iou_thresh)


def test_click_selects_the_lower_of_two_overlapping_labels_and_delete_removes_that_one(qtbot, fo, demo_coco,
                                                                                      tmp_path, monkeypatch):
    from maskreview.core.editing import ops as ed
    from maskreview.core.sources import open_source

    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    win = open_window(qtbot, tmp_path, open_source(demo_coco, name=f"overlap-{tmp_path.name}"), (1200, 800))
    QApplication.setActiveWindow(win)
    qtbot.waitUntil(win.isActiveWindow)
    sid, h, w = win.current_sample_id, win.canvas.data.height, win.canvas.data.width
    lower, upper = np.zeros((h, w), bool), np.zeros((h, w), bool)
    lower[20:60, 20:60] = True
    upper[40:80, 40:80] = True
    ops = [ed.AddInstance(sid, GT, "circle", bitmap=lower), ed.AddInstance(sid, GT, "square", bitmap=upper)]
    win.edits.apply_many(ops, "two overlapping labels")
    lower_id, upper_id = ops[0].label_id, ops[1].label_id
    point = _at(win, 50.5, 50.5)
    viewport = win.canvas.viewport()
    qtbot.mouseMove(viewport, point)  # the top one is hovered ...
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=point)  # no tool chosen: a click selects
    assert win.canvas.selected_instance is not None and win.canvas.selected_instance.id == upper_id
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=point)  # the same spot again: the one below
    assert win.canvas.selected_instance.id == lower_id
    assert win.canvas.hovered_instance.id == upper_id  # ... while the lower one is selected
    text = win.info_panel.selection_text()
    assert "circle" in text and "square" not in text  # the panel describes the selection, not the hover
    qtbot.keyClick(win.canvas, Qt.Key.Key_Delete)
    left = {d.id for d in win.dataset[sid][GT].detections}
    assert upper_id in left and lower_id not in left
    assert win.statusBar().currentMessage().startswith(f"deleted {GT}: circle")
    win.close()


def test_sort_by_false_positives_orders_the_browser(evaluated_window):
    win = evaluated_window
    dock = win.evaluation
    from maskreview.gui.panels.evaluation.dock import SORTS

    dock.sort_box.setCurrentIndex([key for _, key in SORTS].index("fp"))
    fp = dict(zip(dock.results.sample_ids, _rematch(win).per_sample["fp"].tolist()))  # at the canvas's threshold
    shown = win.browser.visible_ids()
    assert len(shown) == len(fp)
    counts = [fp[sid] for sid in shown]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    assert win.current_sample_id == shown[0] or win.current_sample_id in shown


def test_confusion_cell_shows_exactly_the_labels_it_counts_at_the_canvas_threshold(qtbot, evaluated_window):
    win = evaluated_window
    dock = win.evaluation
    rematch = _rematch(win)
    assert int(dock.summary.text("TP")) == rematch.totals["TP"]  # the dock counts what the canvas shows
    assert int(dock.summary.text("FP")) == rematch.totals["FP"]
    conf = dock.confusion
    n = len(conf.labels)
    cells = [(r, c) for r in range(n) for c in range(n) if conf.matrix[r, c] and r != c]
    assert cells
    r, c = max(cells, key=lambda rc: conf.matrix[rc])
    samples, labels = conf.cell_ids(r, c)
    dock.confusion_view.cellClicked.emit(r, c)
    assert win.browser.visible_ids() == samples or set(win.browser.visible_ids()) == set(samples)
    threshold = win.canvas.style.conf_threshold
    scores = {i.id: i.score for sid in samples[:1] for i in _instances(win, sid)}
    for sid in samples:
        win.browser.select_id(sid)
        shown = {i.id for i in win.canvas.visible_instances()}
        assert shown == set(labels) & {i.id for i in _instances(win, sid)}
        for inst in win.canvas.visible_instances():  # none under the threshold: counted as shown
            assert inst.score is None or inst.score >= threshold, (inst.id, scores)


def _instances(win, sid):
    data = win.canvas.data
    assert data.sample_id == sid
    return [i for insts in data.fields.values() for i in insts]


def test_show_all_resets_every_filter_and_keeps_the_current_sample(qtbot, evaluated_window):
    win = evaluated_window
    dock, browser = win.evaluation, win.browser
    total = len(browser.model.ids)
    dock.sort_box.setCurrentIndex(2)  # most false negatives
    conf = dock.confusion
    r, c = next((r, c) for r in range(len(conf.labels)) for c in range(len(conf.labels)) if conf.matrix[r, c])
    dock.confusion_view.cellClicked.emit(r, c)
    browser.search.setText(".")  # every demo file name has one
    current = win.current_sample_id
    assert win.canvas.style.only_labels is not None and browser.order is not None
    dock.clear_button.click()  # Show all
    assert browser.model.rowCount() == total and browser.visible_ids() == browser.model.ids  # the dataset's order
    assert browser.search.text() == "" and browser.order is None and not browser.id_filters
    assert win.canvas.style.only_labels is None
    assert win.current_sample_id == current
    threshold = win.canvas.style.conf_threshold
    visible = {i.id for i in win.canvas.visible_instances()}
    assert visible == {i.id for i in _instances(win, current) if i.score is None or i.score >= threshold}


def test_histogram_counts_the_filtered_view_and_the_visible_fields(qtbot, evaluated_window):
    win = evaluated_window
    sid = win.browser.model.ids[3]
    win.apply_filter([sid], None, "one sample")
    qtbot.waitUntil(lambda: not win.jobs and win.current_sample_id == sid, timeout=20000)
    win.refresh_statistics()
    qtbot.waitUntil(lambda: not win.jobs, timeout=20000)
    threshold = win.canvas.style.conf_threshold
    sample = win.dataset[sid]
    for field in (GT, PRED):
        expected: dict = {}
        for d in sample[field].detections:
            if d.confidence is None or d.confidence >= threshold:
                expected[d.label] = expected.get(d.label, 0) + 1
        assert win.histogram.counts[field] == expected
    win.canvas.set_style(hidden_fields=frozenset({PRED}))
    qtbot.waitUntil(lambda: PRED not in win.histogram.counts, timeout=20000)


def test_a_stored_evaluation_loads_on_reopen_and_hover_is_never_stale(qtbot, evaluated_window, tmp_path):
    from maskreview.core.editing import ops as ed

    win = evaluated_window
    dataset = win.dataset
    results = win.evaluation.results
    mAP = win.evaluation.summary.text("mAP")
    tp = np.flatnonzero(results.pred.outcome == "tp")[0]
    sid = results.sample_ids[results.pred.img[tp]]
    pred_id, gt_id = results.pred.label_id[tp], results.gt.label_id[results.pred.match[tp]]
    win.edits.apply(ed.DeleteLabels((ed.LabelRef(sid, PRED, pred_id),)))  # its GT is now missed
    win.close()

    again = open_window(qtbot, tmp_path / "again", dataset, (1400, 900))
    qtbot.waitUntil(lambda: again.evaluation.results is not None, timeout=120000)
    _settled(qtbot, again)
    assert again.evaluation.summary.text("mAP") != "–"
    assert "stored evaluation 'eval'" in again.evaluation.status.text()
    assert "computed from the labels as they are now" in again.evaluation.status.text()  # a sample changed
    loaded = again.evaluation.results
    assert loaded.eval_key == "eval" and pred_id not in set(loaded.pred.label_id)  # from the labels as they are now
    assert mAP != "–"
    again.browser.select_id(sid)
    qtbot.waitUntil(lambda: again.current_sample_id == sid, timeout=10000)
    gt = next(i for i in again.canvas.data.fields[GT] if i.id == gt_id)
    assert gt.eval != "tp"  # the stored value says TP; its prediction is gone
    again.close()

    third = open_window(qtbot, tmp_path / "third", dataset, (1400, 900))  # nothing changed since
    qtbot.waitUntil(lambda: third.evaluation.results is not None, timeout=120000)
    assert "no sample has changed since" in third.evaluation.status.text()
    assert third.evaluation.summary.text("mAP") == again.evaluation.summary.text("mAP")
    third.close()


def test_hover_follows_the_image_when_a_zoom_moves_it_under_the_pointer(qtbot, fo, demo_coco, tmp_path, monkeypatch):
    """Zooming in at the image's edge moves the image under a still pointer: the hover (status bar,
    highlight) is then the label under the pointer, not the one it was over before."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent

    from maskreview.core.editing import ops as ed
    from maskreview.core.sources import open_source

    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    win = open_window(qtbot, tmp_path, open_source(demo_coco, name=f"hover-zoom-{tmp_path.name}"), (1200, 800))
    try:
        sid, h, w = win.current_sample_id, win.canvas.data.height, win.canvas.data.width
        strip = np.zeros((h, w), bool)
        strip[:, w - 1:] = True  # the image's right-most column
        op = ed.AddInstance(sid, GT, "circle", bitmap=strip)
        win.edits.apply(op)
        win.canvas.fit()
        viewport = win.canvas.viewport()
        point = _at(win, w - 0.5, h / 2)
        qtbot.mouseMove(viewport, point)
        assert win.canvas.hovered_instance is not None and win.canvas.hovered_instance.id == op.label_id
        wheel = QWheelEvent(QPointF(point), QPointF(viewport.mapToGlobal(point)), QPoint(), QPoint(0, 120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        for _ in range(3):
            QApplication.sendEvent(viewport, wheel)
        under = win.canvas.mapToScene(point)
        assert under.x() < w - 1  # the zoom moved the image: the pointer is off the strip now (not vacuous)
        now = win.canvas.instance_at(under.x(), under.y())
        assert win.canvas.hovered_instance is now and (now is None or now.id != op.label_id)
    finally:
        win.canvas.select_instance(None)
        win.close()


def test_the_stale_note_goes_when_undo_brings_back_the_evaluated_labels(qtbot, evaluated_window):
    """An edit after the evaluation marks its figures as out of date; undoing back to the
    evaluated labels clears the mark, redo puts it back, and an undo followed by another edit (the
    same undo-stack index, other labels) keeps it."""
    from maskreview.core.editing import ops as ed
    from maskreview.gui.features.evaluation import STALE_NOTE

    win = evaluated_window
    status = win.evaluation.status
    fresh = status.text()
    assert STALE_NOTE not in fresh
    results = win.evaluation.results
    first, second = (ed.LabelRef(results.sample_ids[results.pred.img[k]], PRED, results.pred.label_id[k])
                     for k in (0, 1))
    win.edits.apply(ed.DeleteLabels((first,)))
    assert STALE_NOTE in status.text()
    win.undo_stack.undo()
    assert status.text() == fresh
    win.undo_stack.redo()
    assert STALE_NOTE in status.text()
    win.undo_stack.undo()
    win.edits.apply(ed.DeleteLabels((second,)))  # the index it was evaluated at + 1 again
    assert STALE_NOTE in status.text()
    win.undo_stack.undo()  # the evaluated labels again
    assert status.text() == fresh
