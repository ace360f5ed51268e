"""Thumbnails show badges (issue 14, point 4): the sample's tags, reviewed, and its FP / FN counts at
the review state's ONE confidence and IoU threshold, the dock's and the canvas's (never the counts
an evaluation stored at confidence 0); they follow edits, undo, the thresholds and an evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QImage

from helpers_gui import open_window
from maskreview.core.sources import open_source

GT, PRED = "ground_truth", "predictions"


@pytest.fixture
def evaluated(fo, demo_coco, tmp_path):
    from maskreview.core.evaluation.runs import evaluate_and_store
    from maskreview.core.evaluation.synthetic import write_perturbed_predictions

    dataset = open_source(demo_coco, name=f"badges-{tmp_path.name}")
    write_perturbed_predictions(dataset.view(), seed=3)
    evaluate_and_store(dataset.view(), eval_key="eval")
    first = dataset.first()
    first.tags = ["reviewed", "hard"]
    first.save()
    return dataset


def test_read_badges_from_tags_and_counts(evaluated):
    from maskreview.core.evaluation import analysis, results as R
    from maskreview.gui.thumbnail_badges import counts_at, read_badges

    results = R.compute(evaluated)
    rematch = analysis.rematch_dataset(results, 0.5, 0.5)
    counts = counts_at(results, rematch)
    badges = read_badges(evaluated, counts)
    assert [b.fp for b in badges.values()] == rematch.per_sample["fp"].tolist()
    assert [b.fn for b in badges.values()] == rematch.per_sample["fn"].tolist()
    assert sum(b.fp for b in badges.values()) > 0 and sum(b.fn for b in badges.values()) > 0
    first = badges[evaluated.first().id]
    texts = [t for t, _ in first.chips()]
    assert first.reviewed and texts[:2] == ["✓ reviewed", "hard"]
    assert (f"FP {first.fp}" in texts) == bool(first.fp) and (f"FN {first.fn}" in texts) == bool(first.fn)
    assert all(b.fp is None for b in read_badges(evaluated).values())  # no evaluation: no counts
    assert counts_at(results, None) == {}


def _cell(win, sid) -> np.ndarray:
    view = win.browser.view
    rect = view.visualRect(win.browser.model.index(win.browser.model.row_of[sid]))
    image = view.viewport().grab(rect).toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return arr[:, :image.width() * 3].reshape(image.height(), image.width(), 3).astype(int)


def _has(cell: np.ndarray, rgb) -> bool:
    return bool(np.all(np.abs(cell - np.array(rgb)) <= 40, axis=-1).sum() > 20)


def _settled(qtbot, win, conf):
    state = win.state
    qtbot.waitUntil(lambda: not win.jobs and state.evaluation is not None and state.rematch is not None
                    and state.rematch.conf_thresh == conf, timeout=120000)


def _badge_counts(win, key):
    return [getattr(win.browser.model.sample_badges[sid], key) for sid in win.state.evaluation.sample_ids]


def test_badges_count_at_the_state_threshold_like_the_dock_and_canvas(evaluated, qtbot, tmp_path, monkeypatch):
    from maskreview.core.editing import ops as ed
    from maskreview.gui.thumbnail_badges import FP_RGB, REVIEWED_RGB

    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    win = open_window(qtbot, tmp_path, evaluated, (1100, 700))
    try:
        state, dock, model = win.state, win.evaluation, win.browser.model
        _settled(qtbot, win, state.thresholds.confidence)  # the stored evaluation, loaded on open
        assert state.thresholds.confidence == 0.5
        stored = dict(zip(*evaluated.values(["id", "eval_fp"])))
        fps = _badge_counts(win, "fp")
        assert fps == state.rematch.per_sample["fp"].tolist() and sum(fps) == int(dock.summary.text("FP"))
        assert _badge_counts(win, "fn") == state.rematch.per_sample["fn"].tolist()
        assert fps != [stored[sid] for sid in state.evaluation.sample_ids]  # at 0 there are more: not vacuous

        state.thresholds.confidence = 0.2  # the one threshold moves: the badges follow the dock
        _settled(qtbot, win, 0.2)
        qtbot.waitUntil(lambda: _badge_counts(win, "fp") == state.rematch.per_sample["fp"].tolist(), timeout=10000)
        assert sum(_badge_counts(win, "fp")) == int(dock.summary.text("FP")) > sum(fps)

        first = evaluated.first().id
        qtbot.waitUntil(lambda: model.has_thumbnail(first))
        assert model.sample_badges[first].reviewed and _has(_cell(win, first), REVIEWED_RGB)
        with_fp = next(sid for sid, b in model.sample_badges.items() if b.fp)
        win.browser.select_id(with_fp)
        qtbot.waitUntil(lambda: win.current_sample_id == with_fp and model.has_thumbnail(with_fp))
        assert _has(_cell(win, with_fp), FP_RGB)

        # an edit: the canvas matches live, the badge says the same (the dock's figures are as evaluated)
        before = model.sample_badges[with_fp].fp
        fp = next(i for i in win.canvas.data.fields[PRED] if i.eval == "fp")
        win.edits.apply(ed.DeleteLabels((ed.LabelRef(with_fp, PRED, fp.id),)))
        drawn = sum(1 for i in win.canvas.data.fields[PRED] if i.eval == "fp")
        assert model.sample_badges[with_fp].fp == drawn == before - 1
        win.undo_stack.undo()
        assert model.sample_badges[with_fp].fp == before

        win.edits.apply(ed.SampleTags((first,), ("reviewed",), "remove"))
        assert not model.sample_badges[first].reviewed  # the edit shows on its thumbnail
        win.undo_stack.undo()
        assert model.sample_badges[first].reviewed
        win.canvas.select_instance(None)
    finally:
        win.close()


def test_thumbnail_overlays_follow_the_visible_fields(evaluated, qtbot, tmp_path, monkeypatch):
    """Hiding the label fields (or moving the threshold, a drill-down) redraws the thumbnails as the
    canvas draws: they kept the overlays of the moment they were first drawn."""
    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    win = open_window(qtbot, tmp_path, evaluated, (1100, 700))
    try:
        model = win.browser.model
        sid = model.ids[1]
        qtbot.waitUntil(lambda: model.has_thumbnail(sid), timeout=20000)
        qtbot.wait(300)
        before = _cell(win, sid)
        win.state.display.hidden_fields = frozenset({GT, PRED})
        qtbot.waitUntil(lambda: np.abs(_cell(win, sid) - before).sum() > 1000, timeout=10000)
        win.state.display.hidden_fields = frozenset()
        qtbot.waitUntil(lambda: np.abs(_cell(win, sid) - before).max() < 40, timeout=10000)  # as first drawn
    finally:
        win.close()


def test_thumbnails_coloured_by_evaluation_show_the_outcomes_at_the_threshold(evaluated, qtbot, tmp_path,
                                                                              monkeypatch):
    from maskreview.gui.canvas.overlay import EVAL_COLORS, NO_EVAL_COLOR

    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    win = open_window(qtbot, tmp_path, evaluated, (1100, 700))
    try:
        state = win.state
        _settled(qtbot, win, state.thresholds.confidence)
        state.display.color_mode = "eval"
        sid = next(s for s, b in win.browser.model.sample_badges.items() if b.fp and b.fn)
        h, w, insts, colors = win._thumbnail_overlays([sid])[sid]
        by_outcome = {}
        for inst, color in zip(insts, colors):
            by_outcome.setdefault(inst.eval, set()).add(tuple(color))
        badge = win.browser.model.sample_badges[sid]
        assert sum(1 for i in insts if i.eval == "fp") == badge.fp  # the badge's count, drawn in FP colour
        assert by_outcome["fp"] == {EVAL_COLORS["fp"]} and by_outcome["tp"] == {EVAL_COLORS["tp"]}
        assert NO_EVAL_COLOR not in {tuple(c) for c in colors}  # before: every label grey
    finally:
        win.close()


def test_a_label_edit_keeps_the_badges_read_a_tag_edit_reads_them_again(fo, demo_coco, qtbot, tmp_path, monkeypatch):
    """An edit, undo or redo that leaves tags alone does not query the sample's tags again (a dense
    edit step's ~5 ms, #17.3); one that adds or removes a tag does, both ways."""
    from maskreview.core.editing import ops as ed

    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    dataset = open_source(demo_coco, name=f"badges-kept-{tmp_path.name}")
    win = open_window(qtbot, tmp_path, dataset, (1100, 700))
    try:
        model = win.browser.model
        sid = model.ids[0]
        win.browser.select_id(sid)
        qtbot.waitUntil(lambda: win.current_sample_id == sid and win.canvas.data is not None)
        read = model.sample_badges[sid]
        label = win.canvas.data.fields[GT][0]
        win.edits.apply(ed.DeleteLabels((ed.LabelRef(sid, GT, label.id),)))
        assert model.sample_badges[sid] is read
        win.undo_stack.undo()
        win.undo_stack.redo()
        win.undo_stack.undo()
        assert model.sample_badges[sid] is read and len(win.canvas.data.fields[GT]) == len(dataset[sid][GT].detections)

        win.edits.apply(ed.SampleTags((sid,), ("hard",), "add"))
        assert model.sample_badges[sid].tags == ("hard",)
        win.undo_stack.undo()
        assert model.sample_badges[sid].tags == ()
        win.undo_stack.redo()
        assert model.sample_badges[sid].tags == ("hard",)
    finally:
        win.close()


def test_a_refused_tag_undo_kept_mine_shows_the_tags_written(fo, demo_coco, qtbot, tmp_path, monkeypatch):
    """An undo refused because the sample changed elsewhere, then written anyway ("keep mine"):
    the badge shows the tags as written, not those read while the conflict was asked about."""
    from maskreview.core.editing import ops as ed

    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    dataset = open_source(demo_coco, name=f"badges-conflict-{tmp_path.name}")
    win = open_window(qtbot, tmp_path, dataset, (1100, 700))
    try:
        model = win.browser.model
        sid = model.ids[0]
        win.edits.apply(ed.SampleTags((sid,), ("hard",), "add"))
        assert model.sample_badges[sid].tags == ("hard",)
        sample = dataset[sid]  # someone else changes the sample behind the window's back
        sample[GT].detections[0].label = "theirs"
        sample.save()
        win.edits.conflict.disconnect(win.features.editing._conflict)  # no question box: answered below
        conflicts = []
        win.edits.conflict.connect(lambda error, what: conflicts.append((error, what)))
        win.undo_stack.undo()
        assert conflicts and dataset[sid].tags == ["hard"]
        assert model.sample_badges[sid].tags == ("hard",)  # as a paint during the question reads it
        win.edits.resolve(*conflicts[0], keep_mine=True)
        assert dataset[sid].tags == []
        assert model.sample_badges[sid].tags == ()
    finally:
        win.close()
