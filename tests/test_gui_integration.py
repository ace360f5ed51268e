"""The main window with every piece wired in: evaluation, model panel, history, tag keys, delete + undo."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from helpers_gui import open_window
from maskreview.core.sources import open_source


@pytest.fixture
def window(qtbot, fo, demo_coco, tmp_path, monkeypatch):
    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))  # default tag keys
    win = open_window(qtbot, tmp_path, open_source(demo_coco), (1400, 900))
    yield win
    win.close()


def test_docks_and_actions_are_installed(window):
    assert {"Evaluation", "Model", "History"} <= set(window.docks)
    assert not window.docks["Model"].isVisible()  # hidden until asked for: no model load at start
    shortcuts = [s.toString() for a in window.actions() for s in a.shortcuts()]
    assert len(shortcuts) == len(set(shortcuts)), "a shortcut is bound twice"
    for name in ("evaluate", "delete_label", "relabel", "promote", "tool_brush", "tool_eraser", "tool_polygon",
                 "export_tagged", "tag_reviewed"):
        assert name in window.actions_
    assert window.review_label.text() == "samples reviewed 0/12"


def test_evaluation_fills_dock_and_sets_eval_key(window, qtbot):
    from maskreview.core.evaluation.synthetic import write_perturbed_predictions
    from maskreview.gui import integration

    write_perturbed_predictions(window.dataset, seed=3)
    window.set_dataset(window.dataset)
    qtbot.waitUntil(lambda: not window.jobs, timeout=20000)
    dock = window.evaluation
    with qtbot.waitSignal(dock.results_changed, timeout=60000):
        job = integration.evaluate(window)
        assert job is not None
    assert window.eval_key == "eval"
    assert dock.class_table.model().rowCount() > 0
    # the current sample is matched live; its outcomes reach the canvas instances
    with qtbot.waitSignal(dock.sample_outcomes_changed, timeout=10000):
        window.browser.step(1)
    evals = {i.eval for insts in window.canvas.data.fields.values() for i in insts}
    assert evals & {"tp", "fp", "fn"}
    # a filter from the dock reaches the browser
    ids = [window.current_sample_id]
    dock.filter_requested.emit(ids, None, "one sample")
    assert window.browser.model.rowCount() == 1
    qtbot.waitUntil(lambda: not window.jobs and not dock._rematch_job.isRunning(), timeout=20000)


def test_tag_key_tags_current_sample(window, qtbot):
    sid = window.current_sample_id
    assert "reviewed" not in window.dataset[sid].tags
    assert window.actions_["tag_reviewed"].shortcut().toString() == "R"
    QApplication.setActiveWindow(window)
    qtbot.waitUntil(window.isActiveWindow)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_R)
    assert window.undo_stack.count() == 1, window.edits_failed
    assert window.dataset.select(sid).values("tags") == [["reviewed"]]
    assert window.review_label.text() == "samples reviewed 1/12"


def test_delete_label_then_undo_restores_it(window, qtbot):
    sid = window.current_sample_id
    inst = window.canvas.data.fields["ground_truth"][0]
    before = len(window.dataset[sid].ground_truth.detections)
    window.canvas.select_instance(inst)
    window.actions_["delete_label"].trigger()
    window.dataset.reload()
    ids = [d.id for d in window.dataset[sid].ground_truth.detections]
    assert len(ids) == before - 1 and inst.id not in ids
    assert all(i.id != inst.id for i in window.canvas.data.fields["ground_truth"])  # canvas refreshed
    window.undo_stack.undo()
    QApplication.processEvents()
    window.dataset.reload()
    assert inst.id in [d.id for d in window.dataset[sid].ground_truth.detections]
    assert any(i.id == inst.id for i in window.canvas.data.fields["ground_truth"])
