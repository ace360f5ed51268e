"""Bad files given to the window (issue 12.6): opened, dropped, added or loaded as a model, each
gets a dialog or status-bar message naming it; the window stays, and the dataset and sample that
were open stay as they were."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from helpers_bad_files import KINDS, bad_file
from helpers_gui import drop_path, open_window
from maskreview.core.sources import open_source


@pytest.fixture
def window(qtbot, fo, demo_coco, tmp_path):
    win = open_window(qtbot, tmp_path, open_source(demo_coco))
    win.browser.step(2)  # a sample other than the first, to see that it stays
    yield win
    win.close()


def shown_messages(window) -> list[str]:
    """The text of every message box on screen, and the status bar's message."""
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    return [f"{b.text()} {b.informativeText()}" for b in boxes] + [window.statusBar().currentMessage()]


def state(window) -> tuple:
    """What must not change: the dataset, its samples and size, the sample shown and its picture."""
    return (window.dataset, window.dataset.name, len(window.dataset), window.current_sample_id,
            window.canvas.data, window.label_fields[:], window.windowTitle())


def _expect_message_naming(qtbot, window, path: Path, before: tuple, datasets_before: set, fo) -> None:
    qtbot.waitUntil(lambda: any(path.name in m for m in shown_messages(window)), timeout=60000)
    qtbot.waitUntil(lambda: not window.jobs, timeout=60000)
    assert window.isVisible()
    assert state(window) == before
    assert set(fo.list_datasets()) == datasets_before  # nothing half-imported
    assert not (path.parent / "pwned").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_dropped_bad_file_gets_a_message_and_changes_nothing(window, qtbot, fo, demo_coco, tmp_path, kind):
    path = bad_file(kind, tmp_path, demo_coco)
    before, datasets = state(window), set(fo.list_datasets())
    drop_path(window.canvas.viewport(), path)
    _expect_message_naming(qtbot, window, path, before, datasets, fo)


@pytest.mark.parametrize("kind", ["truncated_json", "bomb_png", "corrupt_png", "folder_without_images", "not_an_image"])
def test_opened_bad_file_gets_a_message_and_changes_nothing(window, qtbot, fo, demo_coco, tmp_path, monkeypatch,
                                                            kind):
    path = bad_file(kind, tmp_path, demo_coco)
    # the file dialogs stand for the user picking ``path``
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(path))
    before, datasets = state(window), set(fo.list_datasets())
    window.actions_["open_folder" if path.is_dir() else "open"].trigger()
    _expect_message_naming(qtbot, window, path, before, datasets, fo)


def test_bad_recent_dataset_gets_a_message(window, qtbot, fo):
    before, datasets = state(window), set(fo.list_datasets())
    window.open_source("no-such-dataset-anywhere")
    qtbot.waitUntil(lambda: any("no-such-dataset-anywhere" in m for m in shown_messages(window)), timeout=30000)
    qtbot.waitUntil(lambda: not window.jobs, timeout=30000)
    assert state(window) == before and set(fo.list_datasets()) == datasets


def test_adding_a_dropped_image_that_went_bad_gets_a_message(window, qtbot, fo, tiny_model, demo_coco, tmp_path):
    window.model_name = str(tiny_model)
    window.engine_settings.max_detections = 4
    image = tmp_path / "dropped.png"
    image.write_bytes(next((demo_coco.parent / "images").glob("*.png")).read_bytes())
    drop_path(window.canvas.viewport(), image)
    assert window.canvas.data.scratch
    qtbot.waitUntil(lambda: not window.jobs, timeout=120000)
    image.write_bytes(b"")  # emptied between the drop and the add
    n = len(window.dataset)
    window.actions_["add_scratch"].trigger()
    qtbot.waitUntil(lambda: any("dropped.png" in m for m in shown_messages(window)), timeout=10000)
    assert len(window.dataset) == n and window.isVisible()


@pytest.mark.parametrize("kind", ["config_with_python_tag", "booby_trapped_weights"])
def test_a_bad_model_gets_a_message_and_runs_nothing(window, qtbot, fo, tiny_model, demo_coco, tmp_path, kind):
    path = bad_file(kind, tmp_path, demo_coco)
    if kind == "config_with_python_tag":
        window.model_runs.choose(str(path))
    else:
        window.model_runs.choose(str(tiny_model), weights=str(path))
    fields = window.dataset.get_field_schema()
    before = state(window)
    window.run_inference("current")
    qtbot.waitUntil(lambda: any(path.name in m for m in shown_messages(window)), timeout=120000)
    qtbot.waitUntil(lambda: not window.jobs, timeout=30000)
    assert not (path.parent / "pwned").exists()
    assert state(window) == before and window.dataset.get_field_schema().keys() == fields.keys()


def test_a_bad_model_for_a_dropped_image_gets_a_message(window, qtbot, fo, demo_coco, tmp_path):
    path = bad_file("config_with_python_tag", tmp_path, demo_coco)
    window.model_runs.choose(str(path))
    image = next((demo_coco.parent / "images").glob("*.png"))
    drop_path(window.canvas.viewport(), image)  # shown at once, then predicted with the chosen model
    qtbot.waitUntil(lambda: any(path.name in m for m in shown_messages(window)), timeout=120000)
    qtbot.waitUntil(lambda: not window.jobs, timeout=30000)
    assert not (path.parent / "pwned").exists() and window.isVisible()
    assert window.canvas.data.filepath == str(image) and not window.canvas.data.fields.get("predictions")


def test_an_eval_key_collision_in_the_window_gets_a_dialog(window, qtbot, fo):
    from maskreview.core.evaluation import synthetic
    from maskreview.gui.integration import evaluate

    synthetic.write_perturbed_predictions(window.dataset, seed=1)
    sample = window.dataset.first()
    sample.ground_truth.detections[0]["eval"] = "a reviewer's note"  # not an evaluation's value
    sample.save()
    window.set_dataset(window.dataset)
    qtbot.waitUntil(lambda: not window.jobs, timeout=30000)
    job = evaluate(window)
    with qtbot.waitSignal(job.finished, timeout=60000, raising=False):
        pass
    qtbot.waitUntil(lambda: any("ground_truth.detections.eval" in m for m in shown_messages(window)), timeout=10000)
    assert window.dataset.first().ground_truth.detections[0]["eval"] == "a reviewer's note"
    assert window.dataset.list_evaluations() == []


def test_an_exception_escaping_a_slot_gets_a_dialog_not_a_crash(window, caplog):
    import sys

    from maskreview.core.errors import BadInputError
    from maskreview.gui.app import report_exception

    try:
        raise BadInputError("/data/x.png: cannot decode image")
    except BadInputError:
        report_exception(window, *sys.exc_info())
    assert any("/data/x.png: cannot decode image" in m for m in shown_messages(window))
    assert not caplog.records  # the user's input: no traceback
    try:
        raise KeyError("oops")
    except KeyError:
        report_exception(window, *sys.exc_info())
    assert any("KeyError" in m for m in shown_messages(window)) and window.isVisible()
    assert caplog.records and caplog.records[-1].exc_info is not None  # a bug: its traceback in the log


def test_a_sample_deleted_elsewhere_gets_a_message(window, qtbot):
    ids = window.browser.visible_ids()
    following = ids[ids.index(window.current_sample_id) + 1]
    window.dataset.delete_samples(following)  # as the FiftyOne App or another reviewer would
    window.actions_["next_sample"].trigger()
    assert any(following in m and "deleted elsewhere" in m for m in shown_messages(window))
    assert window.isVisible() and window.canvas.data is None
    window.actions_["next_sample"].trigger()  # the next one shows again
    assert window.canvas.data is not None and window.canvas.data.sample_id == ids[ids.index(following) + 1]


def test_an_unexpected_error_in_a_job_gets_a_dialog_and_its_traceback_logged(window, qtbot, caplog):
    from maskreview.gui.workers import Job

    def broken(progress):
        raise RuntimeError("a bug in a worker")

    before = state(window)
    window._start_job(Job(broken, "opening /data/odd.json"))
    qtbot.waitUntil(lambda: any("opening /data/odd.json failed" in m and "a bug in a worker" in m
                                for m in shown_messages(window)), timeout=10000)
    assert state(window) == before and window.isVisible()
    assert any(r.exc_info and "a bug in a worker" in str(r.exc_info[1]) for r in caplog.records)
