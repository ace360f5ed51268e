"""With more labels in view than ``CHIP_LIMIT`` (and no more than ``DETAIL_LIMIT``: boxes still
drawn), only the framed, selected and hovered labels get label chips, and a note over the viewport
says why; at or under it every label has its chip as before. What a hover change or a pan leaves
on screen is what a whole repaint draws (#17, dense pan/zoom frame)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_gui import settle, shown
from test_canvas_scroll import _on_screen, _painted_after

from maskreview.gui.canvas import overlay as ov
from maskreview.gui.canvas.view import CHIP_LIMIT, DETAIL_LIMIT

H, W = 520, 1000
DENSE_W = 560  # left of this the labels stand 40 px apart; right of it 160


def _scene() -> dict:
    """Ground truth and a prediction beside it on a grid: dense on the left, sparse on the right."""
    rng = np.random.default_rng(11)
    gt, pred = [], []
    spots = [(y, x) for y in range(30, H - 40, 40) for x in range(10, DENSE_W, 40)]
    spots += [(y, x) for y in range(30, H - 40, 120) for x in range(DENSE_W + 40, W - 40, 160)]
    for k, (y, x) in enumerate(spots):
        w, h = int(rng.integers(16, 26)), int(rng.integers(16, 24))
        mask = np.zeros((h, w), bool)
        mask[2:-2, 2:-2] = True
        label = ("cell", "debris")[k % 2]
        gt.append(ov.Instance("ground_truth", f"g{k}", label, None, x, y, w, h, mask))
        pred.append(ov.Instance("predictions", f"p{k}", label, 0.5 + k % 5 / 10, x + 4, y + 3, w, h, mask))
    return {"ground_truth": gt, "predictions": pred}


@pytest.fixture
def canvas(qtbot):
    from maskreview.gui.canvas import ImageCanvas
    from maskreview.gui.canvas.sample import SampleData

    view = shown(qtbot, ImageCanvas(), (480, 360))
    image = np.random.default_rng(3).integers(30, 120, (H, W, 3), dtype=np.uint8)
    view.set_classes(["cell", "debris"])
    view.set_sample(SampleData("s", "x.png", image, None, H, W, _scene()))
    view.set_style(labels=True, boxes=True, conf_threshold=0.0)
    view.set_zoom(1.0)
    view.centerOn(200, H / 2)
    settle(qtbot)
    assert CHIP_LIMIT < view.instances_in_view() <= DETAIL_LIMIT
    return view


def _hover(qtbot, canvas, inst) -> None:
    _painted_after(qtbot, canvas, lambda: setattr(canvas.state, "hover", canvas._ref(inst)))  # noqa: SLF001 - what a mouse move sets


def _inst(canvas, field: str, k: int) -> ov.Instance:
    return canvas.data.fields[field][k]


def test_over_the_chip_limit_only_the_framed_selected_and_hovered_labels_get_chips(canvas, qtbot):
    _painted_after(qtbot, canvas, canvas.viewport().update)
    assert canvas.label_chip_rects == {}, "chips of labels nobody points at"
    hovered, selected, framed = _inst(canvas, "predictions", 20), _inst(canvas, "ground_truth", 33), _inst(canvas, "ground_truth", 47)
    _hover(qtbot, canvas, hovered)
    assert set(canvas.label_chip_rects) == {hovered.id}
    canvas.select_instance(selected)
    _painted_after(qtbot, canvas, canvas.viewport().update)
    assert set(canvas.label_chip_rects) == {hovered.id, selected.id}
    canvas.framed = (framed,)
    _painted_after(qtbot, canvas, canvas.viewport().update)
    assert set(canvas.label_chip_rects) == {hovered.id, selected.id, framed.id}
    top = canvas._chips.height  # noqa: SLF001
    at = canvas.mapFromScene(hovered.x0, hovered.y0)
    assert canvas.label_chip_rects[hovered.id].topLeft().toPoint() == at - type(at)(0, top)  # at its box's corner
    _hover(qtbot, canvas, None)
    assert set(canvas.label_chip_rects) == {selected.id, framed.id}


def test_at_or_under_the_chip_limit_every_label_in_view_has_its_chip(canvas, qtbot):
    canvas.set_zoom(2.0)
    canvas.centerOn(200, H / 2)
    settle(qtbot)
    assert canvas.instances_in_view() <= CHIP_LIMIT
    _painted_after(qtbot, canvas, canvas.viewport().update)
    vp = canvas.viewport().rect().toRectF()
    in_view = [i for insts in canvas.data.fields.values() for i in insts
               if vp.contains(canvas.mapFromScene(i.x0, i.y0).toPointF())]
    assert len(in_view) > 30 and {i.id for i in in_view} <= set(canvas.label_chip_rects)


def test_a_note_says_why_the_chips_are_gone(canvas, qtbot):
    _painted_after(qtbot, canvas, canvas.viewport().update)
    note = canvas._note_at  # noqa: SLF001
    assert note.width() > 200 and note.bottom() > canvas.viewport().height() - 20
    with_note = _on_screen(canvas)[note.top():note.bottom(), note.left():note.right()]
    canvas.set_style(labels=False)
    _painted_after(qtbot, canvas, canvas.viewport().update)
    without = _on_screen(canvas)[note.top():note.bottom(), note.left():note.right()]
    assert np.mean(np.any(with_note != without, axis=-1)) > 0.5, "no note"


def test_hover_changes_leave_on_screen_what_a_whole_repaint_draws(canvas, qtbot):
    """The old hovered chip goes, the new one comes, the selected one's stays put (a hovered
    label next to the selected one is placed clear of its chip)."""
    canvas.select_instance(_inst(canvas, "ground_truth", 33))
    _painted_after(qtbot, canvas, canvas.viewport().update)
    for field, k in (("predictions", 33), ("ground_truth", 34), ("predictions", 20), ("ground_truth", 33), ("predictions", 2)):
        _hover(qtbot, canvas, _inst(canvas, field, k))
        hovered = _on_screen(canvas)
        _painted_after(qtbot, canvas, canvas.viewport().update)
        differ = np.argwhere(np.any(hovered != _on_screen(canvas), axis=-1))
        assert not differ.size, f"hover {field} {k}: {len(differ)} pixels differ, rows {differ[:, 0].min()}-{differ[:, 0].max()}"


def test_pans_with_the_note_and_across_the_chip_limit_show_what_a_whole_repaint_draws(canvas, qtbot):
    """Pans at 1:1 scrolled in place with the note and a hovered label's chip on screen, and from
    the dense part to the sparse one (where every chip comes back) and back. Pans with every chip
    shown are left out: there a pan keeps the chips on screen where they are, where a whole
    layout may stack them otherwise (test_canvas_scroll)."""
    _hover(qtbot, canvas, _inst(canvas, "predictions", 30))
    _painted_after(qtbot, canvas, canvas.viewport().update)
    hbar, vbar = canvas.horizontalScrollBar(), canvas.verticalScrollBar()
    modes = [canvas.chips_for_focus_only()]
    for dx, dy in [(37, 0), (0, 29), (-23, -31)] + [(60, 0)] * 12 + [(-60, 0)] * 12:
        if not 0 <= hbar.value() + dx <= hbar.maximum() or not 0 <= vbar.value() + dy <= vbar.maximum():
            continue
        _painted_after(qtbot, canvas, lambda: (hbar.setValue(hbar.value() + dx), vbar.setValue(vbar.value() + dy)))
        modes.append(canvas.chips_for_focus_only())
        scrolled = _on_screen(canvas)
        _painted_after(qtbot, canvas, canvas.viewport().update)
        if not (modes[-1] or modes[-2]):
            continue
        differ = np.argwhere(np.any(scrolled != _on_screen(canvas), axis=-1))
        assert not differ.size, (f"pan ({dx}, {dy}) {'to' if modes[-1] else 'from'} focused chips only: "
                                 f"{len(differ)} pixels differ, rows {differ[:, 0].min()}-{differ[:, 0].max()}, "
                                 f"columns {differ[:, 1].min()}-{differ[:, 1].max()}")
    assert [a for a, b in zip(modes, modes[1:]) if a != b] == [True, False], "the pans did not cross the chip limit there and back"
