"""After an edit the window updates the sample on show from the change's own patches
(``canvas.sample.patched_sample``), not by reading all its labels again (#17.3, dense scenes):
after every kind of edit, its undo and its redo, the canvas must show exactly what the database
holds — the instances equal a fresh ``load_sample`` and each layer equals a full render of it,
pixel for pixel — while the labels the edit did not touch stay the same objects (not read again)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers_gui import open_window
from maskreview.core import masks as mk
from maskreview.core.editing import ops as ed
from maskreview.core.sources import open_source


@pytest.fixture
def win(qtbot, fo, demo_coco, tmp_path):
    from maskreview.core.evaluation import synthetic

    ds = open_source(demo_coco, name=f"canvas-patch-{tmp_path.name}")
    synthetic.write_perturbed_predictions(ds, seed=3)
    w = open_window(qtbot, tmp_path, ds)
    w.canvas.set_style(conf_threshold=0.0)  # every prediction drawn
    sid = max(ds.values("id"), key=lambda s: len(ds[s].ground_truth.detections) + len(ds[s].predictions.detections))
    w.browser.select_id(sid)
    qtbot.waitUntil(lambda: w.canvas.data is not None and w.canvas.data.sample_id == sid)
    return w


def _facts(inst) -> tuple:
    mask = None if inst.mask is None else (inst.mask.shape, inst.mask.tobytes())
    return (inst.field, inst.id, inst.label, inst.score, inst.x0, inst.y0, inst.w, inst.h, mask, inst.tags)


def _layers(canvas) -> dict:
    canvas.render_overlays()
    return {name: item.layer.array.copy() for name, item in canvas._layer_items.items()  # noqa: SLF001
            if item.isVisible() and item.layer is not None}


def _assert_shows_the_database(win, qtbot) -> None:
    from maskreview.gui.canvas import ImageCanvas, load_sample

    data = win.canvas.data
    fresh = load_sample(win.dataset, data.sample_id, win.label_fields)
    assert data.version == fresh.version
    assert data.tags == fresh.tags
    assert list(data.fields) == list(fresh.fields)
    for name in fresh.fields:
        assert [_facts(i) for i in data.fields[name]] == [_facts(i) for i in fresh.fields[name]], name
    other = ImageCanvas(state=win.state)
    qtbot.addWidget(other)
    other.resize(win.canvas.size())
    other.classes, other.field_order = list(win.canvas.classes), list(win.canvas.field_order)
    other.set_sample(fresh)
    mine, full = _layers(win.canvas), _layers(other)
    assert mine.keys() == full.keys() and mine
    from maskreview.gui.canvas.legend import legend_rows

    for name in fresh.fields:  # the visible lists patched in place (not filtered again) agree too
        assert [_facts(i) for i in win.canvas.visible_instances(name)] == [_facts(i) for i in other.visible_instances(name)]
        assert win.canvas.field_summary(name) == other.field_summary(name)
    assert legend_rows(win.canvas) == legend_rows(other)
    for name in full:
        assert np.array_equal(mine[name], full[name]), f"{name}: the patched layer differs from a full render"


def _ops(win) -> list:
    data = win.canvas.data
    sid, gt, pred = data.sample_id, data.fields["ground_truth"], data.fields["predictions"]
    ref = lambda inst: ed.LabelRef(sid, inst.field, inst.id)  # noqa: E731
    g0, g1, p0, p1 = gt[0], gt[-1], pred[0], pred[len(pred) // 2]
    grown = mk.paste(g0.x0, g0.y0, g0.full_mask(), data.height, data.width)
    grown[g0.y0:g0.y0 + g0.h, g0.x0 + g0.w:min(g0.x0 + g0.w + 9, data.width)] = True  # a brush stroke on its right
    square = [(10.0, 10.0, 40.0, 10.0, 40.0, 40.0, 10.0, 40.0)]
    return [
        ed.SetMask(ref(g0), grown),
        ed.Relabel((ref(g1),), "edited-class"),
        ed.LabelTags((ref(p0),), ("fix",), "add"),
        ed.DeleteLabels((ref(p1),)),
        ed.AddInstance(sid, "ground_truth", "drawn", polygons=square),
        ed.Promote(ref(p0), "ground_truth"),
        ed.SampleTags((sid,), ("reviewed",), "add"),
        ed.RestoreOriginal(ref(g0)),
        [ed.DeleteLabels((ref(g1),)), ed.SetMask(ref(pred[1]), grown)],  # one undo step, two labels
    ]


def test_every_edit_its_undo_and_redo_show_what_the_database_holds(win, qtbot):
    for op in _ops(win):
        before = win.canvas.data
        untouched = before.fields["predictions"][-1]
        change = win.features.editing.apply(op, "two edits") if isinstance(op, list) else win.features.editing.apply(op)
        assert change, op
        after = win.canvas.data
        assert after is not before
        assert untouched in after.fields["predictions"] and any(i is untouched for i in after.fields["predictions"]), \
            "a label the edit did not touch was read again (the patch path was not taken)"
        _assert_shows_the_database(win, qtbot)
    stack = win.undo_stack
    while stack.canUndo():
        stack.undo()
        _assert_shows_the_database(win, qtbot)
    while stack.canRedo():
        stack.redo()
        _assert_shows_the_database(win, qtbot)


def test_a_write_from_elsewhere_in_between_reads_the_sample_again(win, qtbot):
    """Keep mine after someone else changed the sample: the edit goes on top of their version,
    which the canvas never showed, so it is read again (their label appears too)."""
    from maskreview.gui.canvas import patched_sample

    data = win.canvas.data
    sid = data.sample_id
    sample = win.dataset[sid]
    theirs = sample.ground_truth.detections[0]
    theirs.label = "theirs"
    sample.save()
    g1 = data.fields["ground_truth"][-1]
    conflicts = []
    win.features.editing.edits.conflict.disconnect()
    win.features.editing.edits.conflict.connect(lambda err, what: conflicts.append((err, what)))
    op = ed.Relabel((ed.LabelRef(sid, "ground_truth", g1.id),), "mine")
    assert win.features.editing.apply(op) is None and conflicts
    win.features.editing.edits.resolve(conflicts[0][0], op, keep_mine=True)
    _assert_shows_the_database(win, qtbot)
    labels = [i.label for i in win.canvas.data.fields["ground_truth"]]
    assert labels[0] == "theirs" and labels[-1] == "mine"
    from maskreview.core.editing.changes import SamplePatch, Version

    stale = SamplePatch(sid, tags_add=["x"], expect=Version(99, "someone", None), result=Version(100, "someone", None))
    assert patched_sample(win.canvas.data, [stale]) is None  # not on top of the version shown


def test_an_edit_recompares_only_the_label_it_changed(win, qtbot):
    """A mask edit of one label: the field the edit left alone keeps its visible list (not
    filtered again, its layer not compared again), and the edited field's visible list is patched
    at that label's place only, which is all its layer compares (#17.3: a dense field's 1,500
    labels are not walked per edit)."""
    canvas = win.canvas
    data = canvas.data
    sid, gt = data.sample_id, data.fields["ground_truth"]
    kept = canvas.visible_instances("predictions")
    g = gt[len(gt) // 2]
    grown = mk.paste(g.x0, g.y0, g.full_mask(), data.height, data.width)
    grown[g.y0:g.y0 + g.h, g.x0 + g.w:min(g.x0 + g.w + 6, data.width)] = True
    assert win.features.editing.apply(ed.SetMask(ed.LabelRef(sid, "ground_truth", g.id), grown))
    assert canvas.data is not data
    assert canvas.visible_instances("predictions") is kept, "the untouched field was filtered again"
    entry = canvas._visible["ground_truth"]  # noqa: SLF001
    at = [i.id for i in canvas.visible_instances("ground_truth")].index(g.id)
    assert entry.prev is not None and entry.prev[1] == [at]
    layer = canvas._layer_items["ground_truth"].layer  # noqa: SLF001
    assert layer.insts is entry.insts and layer._moved == [at]  # noqa: SLF001
    _assert_shows_the_database(win, qtbot)
