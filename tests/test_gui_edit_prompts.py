"""No silent choices in editing (issue 14, point 5): a new instance asks for its class, relabel
confirms a new class, promote warns about a ground truth it duplicates. The dialogs are answered
through their own buttons while the real main window waits on them."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from helpers_gui import open_window
from helpers_modal import ModalAnswers, click, pick_class
from maskreview.core.sources import open_source

GT, PRED = "ground_truth", "predictions"


@pytest.fixture
def window(qtbot, fo, demo_coco, tmp_path, monkeypatch):
    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    dataset = open_source(demo_coco, name=f"prompts-{tmp_path.name}")
    for sample in dataset.iter_samples(autosave=True):  # predictions: copies of the ground truth
        preds = [d.copy() for d in sample[GT].detections]
        for d in preds:
            d.confidence = 0.9
        sample[PRED] = fo.Detections(detections=preds)
    win = open_window(qtbot, tmp_path, dataset, (1000, 700))
    yield win
    win.canvas.select_instance(None)  # nothing left for the Selection panel to read once the dataset is gone
    win.close()


@pytest.fixture
def answers():
    made = []

    def make(*fns):  # the answers to the next action's dialogs (those of the last one are done)
        for a in made:
            a.stop()
        made.append(ModalAnswers(*fns))
        return made[-1]
    yield make
    for a in made:
        a.stop()


def _empty_point(win) -> tuple[float, float]:
    """An image point no instance covers, with room for a brush dab around it."""
    data = win.canvas.data
    covered = np.zeros((data.height, data.width), bool)
    for insts in data.fields.values():
        for inst in insts:
            covered[max(inst.y0 - 8, 0):inst.y0 + inst.h + 8, max(inst.x0 - 8, 0):inst.x0 + inst.w + 8] = True
    ys, xs = np.nonzero(~covered[8:-8, 8:-8])
    return float(xs[len(xs) // 2] + 8.5), float(ys[len(ys) // 2] + 8.5)


def _brush_dab(qtbot, win, x, y):
    from maskreview.gui import integration

    integration.set_tool(win, "brush")
    win.canvas.select_instance(None)
    pos = win.canvas.mapFromScene(QPointF(x, y))
    qtbot.mousePress(win.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.mouseRelease(win.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def _gt_labels(win):
    return [d.label for d in win.dataset[win.current_sample_id][GT].detections]


def test_a_new_brush_instance_gets_the_class_chosen(window, qtbot, answers):
    before = _gt_labels(window)
    x, y = _empty_point(window)
    asked = answers(pick_class("triangle"))
    _brush_dab(qtbot, window, x, y)
    assert _gt_labels(window) == before + ["triangle"], asked.seen  # before: silently "circle"
    assert window.canvas.selected_instance.label == "triangle"

    preselected = []
    answers(lambda dialog: (preselected.append(dialog.picker.text()), dialog.reject()))
    _brush_dab(qtbot, window, x + 3, y)
    assert preselected == ["triangle"]  # the class last chosen
    assert _gt_labels(window) == before + ["triangle"]  # cancelled: nothing added
    assert "cancelled" in window.statusBar().currentMessage()


def test_a_new_polygon_instance_gets_the_class_chosen(window, qtbot, answers):
    from maskreview.gui import integration

    x, y = _empty_point(window)
    before = _gt_labels(window)
    answers(pick_class("ring"))
    integration.set_tool(window, "polygon")
    tool = window.edit_tools["polygon"]
    for dx, dy in ((-5, -5), (5, -5), (5, 5), (-5, 5)):
        tool.points.append(QPointF(x + dx, y + dy))
    tool.finish()
    assert _gt_labels(window) == before + ["ring"]


def test_relabel_with_a_typo_asks_before_making_a_new_class(window, answers):
    from maskreview.gui import integration

    inst = window.canvas.data.fields[GT][0]
    window.canvas.select_instance(inst)
    asked = answers(pick_class("sqaure"), click("&No"), lambda dialog: dialog.reject())
    integration.relabel_selected(window)
    assert _gt_labels(window)[0] == inst.label  # before: relabelled to "sqaure" without a word
    assert any("'sqaure' is not a class" in text and "square" in text for text in asked.seen), asked.seen

    answers(pick_class("ellipse"), click("&Yes"))
    integration.relabel_selected(window)
    assert _gt_labels(window)[0] == "ellipse"  # confirmed: the new class is taken

    dialog_classes = []
    answers(lambda dialog: (dialog_classes.extend(dialog.list.item(i).text() for i in range(dialog.list.count())),
                            pick_class("SQU")(dialog)))
    integration.relabel_selected(window)
    assert {"circle", "square", "triangle"} <= set(dialog_classes)  # the dataset's classes are offered
    assert _gt_labels(window)[0] == "square"  # a known class (any case, a part of it) asks nothing more


def _select_duplicate_prediction(window):
    pred = window.canvas.data.fields[PRED][0]
    window.canvas.select_instance(pred)
    return pred


def test_promote_over_a_duplicate_ground_truth_warns_and_can_replace_it(window, answers):
    from maskreview.gui import integration

    gts = window.dataset[window.current_sample_id][GT].detections
    pred = _select_duplicate_prediction(window)
    asked = answers(click("Cancel"))
    integration.promote_selected(window)
    assert len(window.dataset[window.current_sample_id][GT].detections) == len(gts)  # before: a duplicate
    assert asked.seen and "IoU 1.00" in asked.seen[0], asked.seen

    answers(click("Replace it"))
    integration.promote_selected(window)
    now = window.dataset[window.current_sample_id][GT].detections
    assert len(now) == len(gts) and gts[0].id not in {d.id for d in now}
    assert [d for d in now if d.has_field("source_label_id") and d["source_label_id"] == pred.id]
    window.undo_stack.undo()  # one step: the replaced ground truth is back, the promoted one gone
    assert [d.id for d in window.dataset[window.current_sample_id][GT].detections] == [d.id for d in gts]

    _select_duplicate_prediction(window)
    answers(click("Keep both"))
    integration.promote_selected(window)
    assert len(window.dataset[window.current_sample_id][GT].detections) == len(gts) + 1


def test_promote_without_overlap_asks_nothing(window, answers):
    from maskreview.core.editing import ops as ed
    from maskreview.gui import integration

    sid = window.current_sample_id
    x, y = _empty_point(window)
    bitmap = np.zeros((window.canvas.data.height, window.canvas.data.width), bool)
    bitmap[int(y) - 4:int(y) + 4, int(x) - 4:int(x) + 4] = True
    op = ed.AddInstance(sid, PRED, "circle", bitmap=bitmap)
    window.edits.apply(op)
    window.canvas.select_label(PRED, op.label_id)
    asked = answers()
    before = len(window.dataset[sid][GT].detections)
    integration.promote_selected(window)
    assert asked.seen == [] and len(window.dataset[sid][GT].detections) == before + 1
