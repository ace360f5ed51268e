"""Thumbnails show badges (issue 14, point 4): the sample's tags, reviewed, and its FP / FN counts
from the stored evaluation; they follow edits, undo and a new evaluation."""

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


def test_read_badges_from_tags_and_the_stored_evaluation(evaluated):
    from maskreview.gui.thumbnail_badges import read_badges

    badges = read_badges(evaluated, "eval")
    fps, fns = evaluated.values("eval_fp"), evaluated.values("eval_fn")
    assert [b.fp for b in badges.values()] == fps and [b.fn for b in badges.values()] == fns
    assert sum(fps) > 0 and sum(fns) > 0  # the perturbed predictions make both
    first = badges[evaluated.first().id]
    texts = [t for t, _ in first.chips()]
    assert first.reviewed and texts[:2] == ["✓ reviewed", "hard"]
    assert (f"FP {first.fp}" in texts) == bool(first.fp) and (f"FN {first.fn}" in texts) == bool(first.fn)
    assert all(b.fp is None for b in read_badges(evaluated, None).values())  # no evaluation: no counts


def _cell(win, sid) -> np.ndarray:
    view = win.browser.view
    rect = view.visualRect(win.browser.model.index(win.browser.model.row_of[sid]))
    image = view.viewport().grab(rect).toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return arr[:, :image.width() * 3].reshape(image.height(), image.width(), 3).astype(int)


def _has(cell: np.ndarray, rgb) -> bool:
    return bool(np.all(np.abs(cell - np.array(rgb)) <= 40, axis=-1).sum() > 20)


def test_thumbnails_draw_the_badges_and_follow_edits(evaluated, qtbot, tmp_path, monkeypatch):
    from maskreview.core.editing import ops as ed
    from maskreview.gui.thumbnail_badges import FP_RGB, REVIEWED_RGB

    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    win = open_window(qtbot, tmp_path, evaluated, (1100, 700))
    model = win.browser.model
    first = evaluated.first().id
    assert model.sample_badges[first].reviewed  # before: no badges at all
    qtbot.waitUntil(lambda: model.has_thumbnail(first))
    assert _has(_cell(win, first), REVIEWED_RGB)
    with_fp = next(sid for sid, b in model.sample_badges.items() if b.fp)
    qtbot.waitUntil(lambda: model.has_thumbnail(with_fp))
    assert _has(_cell(win, with_fp), FP_RGB)

    win.edits.apply(ed.SampleTags((first,), ("reviewed",), "remove"))
    assert not model.sample_badges[first].reviewed  # the edit shows on its thumbnail
    win.undo_stack.undo()
    assert model.sample_badges[first].reviewed
    win.canvas.select_instance(None)
    win.close()
