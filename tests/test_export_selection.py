"""What an export writes is what was chosen (issue 14, point 6): tags and label tags with their
counts, several fields with scores and label tags, a live count; a selection that matches nothing
is refused with a message (core, dialog, CLI) and writes nothing."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from maskreview.core import export as ex
from maskreview.core.errors import BadInputError
from maskreview.core.progress import Progress
from maskreview.core.sources import open_source

GT, PRED = "ground_truth", "predictions"


@pytest.fixture
def ds(fo, demo_coco, tmp_path):
    dataset = open_source(demo_coco, name=f"export-sel-{tmp_path.name}")
    for i, sample in enumerate(dataset.iter_samples(autosave=True)):
        preds = [d.copy() for d in sample[GT].detections]
        for d in preds:
            d.confidence = 0.75
        sample[PRED] = fo.Detections(detections=preds)
        sample.tags = ["reviewed"] if i < 3 else ["hard"] if i < 5 else []
        if i < 2:
            sample[GT].detections[0].tags = ["fix"]
    return dataset


def test_an_export_matching_nothing_is_refused_and_writes_nothing(ds, tmp_path):
    view = ex.select(ds, ["no-such-tag"])
    with pytest.raises(BadInputError, match="nothing to export.*no-such-tag.*reviewed \\(3\\)"):
        ex.check_matches(view, ["no-such-tag"])
    with pytest.raises(BadInputError, match="nothing to export"):  # before: an empty COCO file
        ex.export(view, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


def test_two_tags_and_two_fields_with_scores_and_label_tags(ds, tmp_path):
    view = ex.select(ds, ["reviewed", "hard"], None, [GT, PRED])
    gt_count = sum(len(s[GT].detections) for s in view)
    assert ex.counts(view, [GT, PRED]) == {"samples": 5, "labels": {GT: gt_count, PRED: gt_count}}
    report = ex.export(view, tmp_path / "out", field=[GT, PRED])
    assert report["samples"] == 5 and report["labels"] == {GT: gt_count, PRED: gt_count}
    gt = json.loads((tmp_path / "out" / f"{GT}.json").read_text())
    pred = json.loads((tmp_path / "out" / f"{PRED}.json").read_text())
    assert len(gt["images"]) == len(pred["images"]) == 5 and gt["images"] == pred["images"]
    assert all(a["score"] == 0.75 for a in pred["annotations"]) and not any("score" in a for a in gt["annotations"])
    assert sum(a.get("tags") == ["fix"] for a in gt["annotations"]) == 2

    only_fix = ex.select(ds, None, ["fix"], GT)
    assert ex.counts(only_fix, GT) == {"samples": 2, "labels": {GT: 2}}


def test_export_dialog_counts_live_and_refuses_nothing(ds, qtbot, tmp_path):
    from PySide6.QtWidgets import QDialogButtonBox

    from maskreview.gui.export_dialog import ExportDialog, set_checked

    dialog = ExportDialog(ds)
    qtbot.addWidget(dialog)
    texts = [dialog.tags.item(i).text() for i in range(dialog.tags.count())]
    assert texts == ["hard (2)", "reviewed (3)"]  # the tags there are, with their counts
    assert [dialog.label_tags.item(i).text() for i in range(dialog.label_tags.count())] == ["fix (2)"]
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    dialog.out.setText(str(tmp_path / "out"))
    assert dialog.selection() == (["reviewed"], None, [GT]) and "Will write 3 samples" in dialog.summary.text()
    assert ok.isEnabled()

    set_checked(dialog.tags, ["reviewed", "hard"])
    set_checked(dialog.fields, [GT, PRED])
    qtbot.waitUntil(lambda: "Will write 5 samples" in dialog.summary.text())
    n = ex.counts(ex.select(ds, ["hard", "reviewed"], None, GT), GT)["labels"][GT]
    assert f"and {2 * n} labels" in dialog.summary.text()
    report = dialog.job_fn()(Progress())
    assert report["samples"] == 5 and (tmp_path / "out" / f"{PRED}.json").exists()

    set_checked(dialog.tags, ["hard"])
    set_checked(dialog.label_tags, ["fix"])  # the "fix" labels are on "reviewed" samples only
    qtbot.waitUntil(lambda: "Nothing to export" in dialog.summary.text())
    assert not ok.isEnabled()  # before: wrote an empty COCO file
    with pytest.raises(BadInputError, match="nothing to export"):
        dialog.job_fn()(None)
    set_checked(dialog.label_tags, [])
    set_checked(dialog.fields, [])
    qtbot.waitUntil(lambda: "at least one label field" in dialog.summary.text())
    assert not ok.isEnabled()


def test_cli_export_matching_nothing_is_one_line_and_exit_2(ds, tmp_path, monkeypatch):
    from helpers_edits import same_database_env

    monkeypatch.setenv("FIFTYONE_DATABASE_URI", same_database_env()["FIFTYONE_DATABASE_URI"])
    monkeypatch.delenv("FIFTYONE_DATABASE_DIR")
    proc = run_cli("export", ds.name, "--tags", "hard", "--label-tags", "fix", "--out", str(tmp_path / "n"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("maskreview: error: nothing to export") and "fix" in lines[0] and "hard" in lines[0]
    assert not (tmp_path / "n").exists()
    proc = run_cli("export", ds.name, "--tags", "reviewed,hard", "--field", f"{GT},{PRED}",
                   "--out", str(tmp_path / "two"), check=True)
    assert "exported 5 samples" in proc.stdout and (tmp_path / "two" / f"{PRED}.json").exists()
