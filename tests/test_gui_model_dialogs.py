"""The model dialogs in the real window (offscreen): Choose model…, Fine-tune on reviewed samples…
(a real training process, a few iterations) and Compare models… (a hand-built case)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from helpers_gui import demo_window

TRAIN_MS = 300_000


@pytest.fixture
def window(qtbot, fo, demo_coco, tmp_path, monkeypatch):
    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    with demo_window(qtbot, tmp_path, demo_coco) as win:
        yield win


def wait_trained(qtbot, dialog, timeout=TRAIN_MS, until=None):
    try:
        qtbot.waitUntil(until or (lambda: not dialog.running), timeout=timeout)
    except qtbot.TimeoutError:
        pytest.fail(f"training did not end: {dialog.stage.text()}\n{dialog._stderr_tail.decode(errors='replace')}")


def _row_of(dialog, name: str) -> int:
    return next(r for r, e in enumerate(dialog.entries) if e.name == name or e.path == name)


def test_model_picker_lists_models_classes_and_warns_on_no_shared_class(window, qtbot, tiny_model):
    from maskreview.core.model.autorun import chosen_model
    from maskreview.gui.dialogs.model_picker import add_recent_model

    win = window
    add_recent_model(win.settings, str(tiny_model))
    win.actions_["choose_model"].trigger()
    dialog = win.model_runs.picker
    qtbot.waitUntil(lambda: bool(dialog.entries), timeout=60000)
    kinds = {e.kind for e in dialog.entries}
    assert {"demo", "dir"} <= kinds and ("zoo" in kinds or "cached" in kinds)
    demo = dialog.entries[_row_of(dialog, "demo")]
    assert demo.classes == ["circle", "square", "triangle", "ring", "cross"] or set(demo.classes) >= {"circle", "ring"}
    zoo = next(e for e in dialog.entries if e.kind in ("zoo", "cached") and "InstanceSegmentation" in e.name)
    assert "person" in zoo.classes and len(zoo.classes) == 80
    row = dialog.table.item(_row_of(dialog, zoo.name), 1).text()
    assert row in ("zoo (needs download)", "zoo (weights cached)")

    # the dataset's classes (shapes) and COCO's share none: said before anything runs
    dialog.table.selectRow(_row_of(dialog, zoo.name))
    assert not dialog.warning.isHidden() and "share none" in dialog.warning.text()
    assert dialog.use_button.text() == "Use anyway"
    dialog.table.selectRow(_row_of(dialog, "demo"))
    assert dialog.warning.isHidden() and "circle" in dialog.details.text()

    dialog.table.selectRow(_row_of(dialog, str(tiny_model)))
    assert dialog.model_edit.text() == str(tiny_model)
    dialog.use_button.click()
    assert win.model_name == str(tiny_model)
    assert chosen_model(win.dataset).model == str(tiny_model)  # remembered for this dataset


def test_finetune_from_the_menu_then_run_the_new_model(window, qtbot):
    from maskreview.core.model.registry import local_models
    from maskreview.core.model.catalog import catalog

    win = window
    for sample in win.dataset.limit(4):
        sample.tags.append("reviewed")
        sample.save()
    win.model_runs.choose("demo")
    win.run_inference("current")  # the demo model's output: 'predictions' is taken
    qtbot.waitUntil(lambda: win.inference is None, timeout=TRAIN_MS)
    demo_labels = win.dataset.values("predictions")
    win.actions_["finetune"].trigger()
    dialog = win.model_runs.finetune
    assert dialog.tag.text() == "reviewed" and dialog.tag_count.text() == "4 samples"
    assert dialog.base.currentText() == "demo"
    dialog.iters.setValue(3)
    dialog.start_button.click()
    assert dialog.running and not dialog.start_button.isEnabled()
    wait_trained(qtbot, dialog)
    assert dialog.result is not None, dialog.stage.text()
    model_dir = Path(dialog.result["model_dir"])
    assert (model_dir / "model_final.pth").is_file() and (model_dir / "training.json").is_file()
    assert [i for i, _ in dialog.losses] == [1, 2, 3]
    # mAP before (the base model) and after (the new one) on the same held-out reviewed sample
    assert dialog.result["held_out"] == 1 and not dialog.table.isHidden()
    before, after = dialog.table.value("mAP", 1), dialog.table.value("mAP", 2)
    assert before == f"{dialog.result['before']['mAP']:.3f}" and after == f"{dialog.result['after']['mAP']:.3f}"
    assert model_dir.resolve() in [p.resolve() for p in local_models()]
    entry = next(e for e in catalog(with_zoo=False) if e.path and Path(e.path).resolve() == model_dir.resolve())
    assert entry.held_out_map == pytest.approx(dialog.result["after"]["mAP"])
    assert entry.base_held_out_map == pytest.approx(dialog.result["before"]["mAP"])

    # offered: run the new model into its own field
    assert not dialog.run_button.isHidden()
    dialog.run_button.click()
    qtbot.waitUntil(lambda: win.inference is None and win.model_runs.last_outcome is not None, timeout=TRAIN_MS)
    outcome = win.model_runs.last_outcome
    assert win.model_name == str(model_dir) and outcome.field.startswith("pred_demo_ft_")
    assert outcome.report.predicted == len(win.dataset)
    assert win.dataset.values("predictions") == demo_labels


def _training_long(win, qtbot):
    """The fine-tune dialog training 5,000 iterations on 3 reviewed samples, its first loss in."""
    for sample in win.dataset.limit(3):
        sample.tags.append("reviewed")
        sample.save()
    win.actions_["finetune"].trigger()
    dialog = win.model_runs.finetune
    dialog.iters.setValue(5000)
    dialog.start_button.click()
    wait_trained(qtbot, dialog, until=lambda: bool(dialog.losses))
    return dialog


def test_finetune_cancel_stops_the_process_and_leaves_no_model(window, qtbot):
    win = window
    dialog = _training_long(win, qtbot)
    out = Path(dialog.out.text())
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=60000)
    assert dialog.result is None and "cancelled" in dialog.stage.text()
    assert not (out / "model_final.pth").exists()
    win.dataset.reload()
    assert not [f for f in win.dataset.get_field_schema() if f.startswith("heldout_")]  # cleaned up
    assert dialog.start_button.isEnabled()


def test_finetune_cancel_that_has_to_kill_the_process_still_reads_cancelled(window, qtbot, monkeypatch):
    """An iteration can outlast the grace period on two busy cores: the kill that ends it is the
    reviewer's cancel, not a crash of the training process."""
    from maskreview.gui.dialogs import finetune

    dialog = _training_long(window, qtbot)
    monkeypatch.setattr(finetune, "KILL_AFTER_MS", 0)  # the grace period is over before the iteration
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=60000)
    assert dialog._killed
    assert dialog.result is None and dialog.stage.text().startswith("training cancelled")
    assert "was ended" in dialog.stage.text()
    assert dialog.start_button.isEnabled()


def _copy(dets, keep):
    from maskreview.core.store import fiftyone

    fo = fiftyone()
    out = []
    for i, d in enumerate(dets.detections):
        label = keep(i, d)
        if label:
            out.append(fo.Detection(label=label, bounding_box=list(d.bounding_box), mask=d.mask.copy(), confidence=0.9))
    return fo.Detections(detections=out)


def test_compare_two_fields_counts_a_hand_built_case_and_filters(window, qtbot):
    pytest.importorskip("maskreview.core.evaluation.compare")
    win = window
    classes = win.classes
    expected = {"a_only": 0, "b_only": 0, "both": 0, "class_changed": 0}
    for sample in win.dataset.iter_samples(autosave=True):
        dets = sample.ground_truth
        # A finds the even instances, B the odd ones plus the first; B calls the third another class
        sample["model_a"] = _copy(dets, lambda i, d: d.label if i % 2 == 0 else None)
        sample["model_b"] = _copy(dets, lambda i, d: (d.label if i != 2 else next(c for c in classes if c != d.label))
                                  if i % 2 == 1 or i in (0, 2) else None)
        n = len(dets.detections)
        expected["both"] += 1 if n else 0
        expected["a_only"] += len([i for i in range(n) if i % 2 == 0 and i != 0])
        expected["b_only"] += len([i for i in range(n) if i % 2 == 1])
        expected["class_changed"] += 1 if n > 2 else 0
    win.set_dataset(win.dataset)
    qtbot.waitUntil(lambda: not win.jobs, timeout=30000)
    win.actions_["compare_models"].trigger()
    dialog = win.model_runs.compare
    dialog.a_box.setCurrentIndex(dialog.a_box.findData("model_a"))
    dialog.b_box.setCurrentIndex(dialog.b_box.findData("model_b"))
    dialog.compare_button.click()
    qtbot.waitUntil(lambda: dialog.comparison is not None, timeout=120000)
    last = dialog.counts.rowCount() - 1
    got = {key: int(dialog.counts.item(last, c).text())
           for c, key in enumerate(("a_only", "b_only", "both", "class_changed"), start=1)}
    assert got == expected
    assert dialog.metrics.value("mAP", 1) != "–" and dialog.metrics.value("AP50", 2) != "–"

    # a click on "B only" for all classes: the browser shows those samples, the canvas those labels
    dialog.counts.cellClicked.emit(last, 2)
    b_only = [r for r in dialog.comparison.rows if r.status == "b_only"]
    assert win.browser.model.rowCount() == len({r.sample_id for r in b_only})
    # a click on one listed instance: its sample, and only its labels (even scored below the slider)
    win.canvas.set_style(conf_threshold=0.95)
    dialog.show_box.setCurrentIndex(dialog.show_box.findData("b_only"))
    dialog.rows.cellClicked.emit(0, 0)
    diff = dialog.shown_rows[dialog.rows.item(0, 0).data(Qt.ItemDataRole.UserRole)]
    assert win.browser.model.rowCount() == 1 and win.current_sample_id == diff.sample_id
    shown = {i.id for insts in win.canvas.data.fields.values() for i in insts if win.canvas.instance_visible(i)}
    assert shown == {i for i in (diff.gt_id, diff.a_id, diff.b_id) if i}
