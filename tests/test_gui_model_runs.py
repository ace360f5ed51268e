"""Model runs in the real window (offscreen), with the demo model and a second tiny model: review
work survives re-runs, each model writes its own field, provenance is shown, a run is one undo
step, a model that fails to load changes nothing, and the automatic run uses the chosen model."""

from __future__ import annotations

import shutil
import time

import pytest

from helpers_gui import demo_window, open_window

RUN_MS = 180_000


@pytest.fixture
def window(qtbot, fo, demo_coco, tmp_path, monkeypatch):
    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))  # default tag keys
    with demo_window(qtbot, tmp_path, demo_coco) as win:
        yield win


def run_and_wait(qtbot, win, *args, **kwargs):
    job = win.run_inference(*args, **kwargs)
    assert job is not None
    qtbot.waitUntil(lambda: win.inference is None and not job.isRunning(), timeout=RUN_MS)
    return win.model_runs.last_outcome


def labels(win, field: str, sid: str | None = None) -> dict[str, tuple]:
    """Label id -> (class, tags, mask bytes) as stored."""
    win.dataset.reload()
    dets = win.dataset[sid or win.current_sample_id][field]
    return {d.id: (d.label, tuple(d.tags or ()), d.mask.tobytes() if d.mask is not None else None)
            for d in (dets.detections if dets else [])}


def field_names(win) -> list[str]:
    panel = win.fields_panel.field_list
    return [panel.item(i).text() for i in range(panel.count())]


def test_reviewed_labels_survive_reruns_fields_per_model_and_undo(window, qtbot, tiny_model):
    from maskreview.core.model.provenance import provenance
    from maskreview.gui import integration

    win = window
    win.model_runs.choose("demo")
    outcome = run_and_wait(qtbot, win, "current")
    assert outcome.field == "predictions" and outcome.report.predicted == 1
    assert win.undo_stack.count() == 1 and "demo" in win.undo_stack.text(0)
    record = provenance(win.dataset, "predictions")
    assert record["model"] == "demo" and len(record["weights_sha256"]) == 64
    assert any(t.startswith("predictions") and t.endswith("by demo") for t in field_names(win)), field_names(win)

    preds = [i for i in win.canvas.data.fields["predictions"]]
    assert len(preds) >= 3, "the demo model finds the scene's shapes"
    relabelled, tagged, deleted = preds[0], preds[1], preds[2]
    other_class = next(c for c in win.classes if c != relabelled.label)
    win.canvas.select_instance(relabelled)
    assert "demo" in win.info_panel.selected_label.text() and "score" in win.info_panel.selected_label.text()
    assert integration.relabel_selected(win, other_class) is not None
    win.canvas.select_label("predictions", tagged.id)
    assert integration.tag_key(win, "r") is not None  # the "reviewed" key on the selected label
    win.canvas.select_label("predictions", deleted.id)
    assert integration.delete_selected(win) is not None
    reviewed = labels(win, "predictions")
    assert reviewed[relabelled.id][0] == other_class and "reviewed" in reviewed[tagged.id][1]
    assert deleted.id not in reviewed
    edits = win.undo_stack.count()

    # the same model again, overwriting its own untouched labels: the review stays exactly
    outcome = run_and_wait(qtbot, win, "current", overwrite=True)
    assert outcome.field == "predictions" and outcome.report.predicted == 1
    after = labels(win, "predictions")
    assert after[relabelled.id] == reviewed[relabelled.id] and after[tagged.id] == reviewed[tagged.id]
    assert deleted.id not in after
    # (the deleted prediction is not predicted back under a new id either)
    assert sum(1 for v in after.values() if v[0] == deleted.label) <= sum(
        1 for v in reviewed.values() if v[0] == deleted.label)
    assert win.undo_stack.count() == edits + 1

    # another model writes its own field, named after it; the demo's field is left alone
    win.model_runs.choose(str(tiny_model))
    outcome = run_and_wait(qtbot, win, "current")
    tiny_field = outcome.field
    assert tiny_field not in ("predictions", "ground_truth") and tiny_field.startswith("pred_")
    assert labels(win, "predictions") == after
    assert provenance(win.dataset, tiny_field)["model"] == str(tiny_model)
    assert tiny_field in win.label_fields
    assert any(t.startswith(tiny_field) and t.endswith(f"by {tiny_model.name}") for t in field_names(win))
    assert win.undo_stack.count() == edits + 2

    # undo the run: the field it created is gone again; redo brings its output back
    win.undo_stack.undo()
    qtbot.waitUntil(lambda: tiny_field not in win.label_fields, timeout=10000)
    win.dataset.reload()
    assert tiny_field not in win.dataset.get_field_schema()
    assert labels(win, "predictions") == after
    win.undo_stack.redo()
    assert tiny_field in win.label_fields and win.dataset[win.current_sample_id][tiny_field] is not None
    # undoing the demo's re-run, then the edits, still works label by label
    win.undo_stack.undo()
    win.undo_stack.undo()
    assert labels(win, "predictions") == reviewed
    win.undo_stack.undo()  # the delete
    assert deleted.id in labels(win, "predictions")


def test_model_that_fails_to_load_changes_nothing(window, qtbot, tiny_model, tmp_path):
    from maskreview.gui.dialogs.model_failure import ModelFailureDialog

    win = window
    win.model_runs.choose(str(tiny_model))
    run_and_wait(qtbot, win, "dataset")
    win.dataset.reload()
    field = win.model_runs.last_outcome.field
    before = {s.id: s[field] for s in win.dataset}
    schema, stack = set(win.dataset.get_field_schema()), win.undo_stack.count()

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model_final.pth").write_bytes(b"PK\x03\x04 truncated")
    win.model_runs.choose(str(broken))
    win.run_inference("dataset")
    qtbot.waitUntil(lambda: isinstance(win.model_runs.failure_dialog, ModelFailureDialog), timeout=RUN_MS)
    dialog = win.model_runs.failure_dialog
    text = dialog.text() + dialog.informativeText()
    assert "model_final.pth" in text and "No predictions were changed" in text
    assert "--" not in text, text  # no command-line flags in the window
    assert dialog.choose_button.text() == "Choose weights file…"
    qtbot.waitUntil(lambda: win.inference is None, timeout=10000)
    win.dataset.reload()
    assert set(win.dataset.get_field_schema()) == schema
    assert {s.id: s[field] for s in win.dataset} == before
    assert win.undo_stack.count() == stack
    # the model that failed is not remembered: the dataset keeps the one that worked
    from maskreview.core.model.autorun import chosen_model

    assert win.model_name == str(tiny_model) and chosen_model(win.dataset).model == str(tiny_model)
    assert f"keeps using “{tiny_model}”" in dialog.informativeText()

    # a way on from the dialog: the weights file chosen there is used
    with qtbot.waitSignal(win.model_runs.run_done, timeout=RUN_MS):
        dialog.weights_chosen.emit(str(tiny_model / "model_final.pth"))
    assert win.model_runs.weights == str(tiny_model / "model_final.pth")


def test_untrusted_checkpoint_offers_trust_not_a_flag(window, qtbot, tiny_model, tmp_path):
    import pickle

    from maskreview.gui.dialogs.model_failure import ModelFailureDialog

    win = window
    odd = tmp_path / "odd.pkl"
    odd.write_bytes(pickle.dumps({"model": {"w": shutil.SameFileError("an arbitrary object")}}))
    win.model_runs.choose(str(tiny_model), str(odd))
    win.run_inference("current")
    qtbot.waitUntil(lambda: isinstance(win.model_runs.failure_dialog, ModelFailureDialog), timeout=RUN_MS)
    dialog = win.model_runs.failure_dialog
    assert dialog.trust_button is not None and "--" not in dialog.informativeText()
    assert "predictions" not in win.dataset.get_field_schema()


def test_automatic_run_uses_the_remembered_model_and_its_own_field(window, qtbot, tiny_model, tmp_path):
    from maskreview.core.model.autorun import chosen_model

    win = window
    win.model_runs.choose("demo")
    run_and_wait(qtbot, win, "dataset")
    demo_values = {s.id: s.predictions for s in win.dataset}
    win.model_runs.choose(str(tiny_model))  # e.g. the fine-tuned model, run on one image only
    tiny_field = run_and_wait(qtbot, win, "current").field
    assert chosen_model(win.dataset).model == str(tiny_model)

    # "the next launch": a new window on the same dataset runs the chosen model, only where missing
    win.close()
    again = open_window(qtbot, tmp_path / "again", win.dataset, wait_ms=RUN_MS)
    try:
        qtbot.waitUntil(lambda: again.inference is None and not again.jobs, timeout=RUN_MS)
        assert again.model_name == str(tiny_model)
        outcome = again.model_runs.last_outcome
        assert outcome.field == tiny_field and outcome.report.predicted == len(again.dataset) - 1
        again.dataset.reload()
        assert {s.id: s.predictions for s in again.dataset} == demo_values  # the demo's field untouched
        assert all(s[tiny_field] is not None for s in again.dataset)
        # opened once more, nothing is missing: no model is even loaded
        again.set_dataset(again.dataset)
        qtbot.waitUntil(lambda: again.inference is None and not again.jobs, timeout=30000)
        assert "up to date" in again.statusBar().currentMessage()
    finally:
        again.close()


def test_picked_field_holding_another_model_asks_for_a_free_one(window, qtbot, tiny_model):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    win = window
    win.model_runs.choose("demo")
    run_and_wait(qtbot, win, "current")
    demo_labels = labels(win, "predictions")
    win.model_runs.choose(str(tiny_model), field="predictions")  # the user picks the demo's field
    stack = win.undo_stack.count()
    win.run_inference("current")
    # the run's thread ends well after its result is shown, as on a loaded machine (CI): the
    # dialog's answer must still start the run, not find the first one "already running"
    win.inference.succeeded.connect(lambda _result: time.sleep(3), Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(lambda: isinstance(win.model_runs.failure_dialog, QMessageBox)
                    and win.model_runs.failure_dialog.windowTitle() == "Field taken", timeout=RUN_MS)
    box = win.model_runs.failure_dialog
    assert "--" not in box.text() + box.informativeText() and "demo" in box.text()
    assert labels(win, "predictions") == demo_labels and win.undo_stack.count() == stack
    other = next(b for b in box.buttons() if b.text().startswith("Write into pred_"))
    with qtbot.waitSignal(win.model_runs.run_done, timeout=RUN_MS):
        other.click()
    outcome = win.model_runs.last_outcome
    assert outcome.field.startswith("pred_") and outcome.report.predicted == 1
    assert labels(win, "predictions") == demo_labels
