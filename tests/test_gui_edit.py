"""Undo/redo through QUndoStack changes the dataset back and forth; edit tools produce exact ops."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QUndoStack

from maskreview.core.editing import ops as ed
from maskreview.core import masks as mk
from maskreview.core.sources import open_source
from maskreview.core.editing.session import EditSession


@pytest.fixture
def ds(fo, demo_coco, tmp_path):
    return open_source(demo_coco, name=f"gui-edit-{tmp_path.name}")


@pytest.fixture
def controller(qtbot, ds, tmp_path):
    from maskreview.gui.commands import EditController

    session = EditSession(ds, journal_root=tmp_path / "journal")
    ctrl = EditController(session, QUndoStack())
    yield ctrl
    session.close()


def _label(ds, sid, i=0):
    return ds[sid].ground_truth.detections[i].label


def test_undo_redo_across_samples(ds, controller, qtbot):
    from maskreview.gui.panels.history import HistoryPanel

    a, b = ds.values("id")[:2]
    la, lb = _label(ds, a), _label(ds, b)
    ref_a = ed.LabelRef(a, "ground_truth", ds[a].ground_truth.detections[0].id)
    ref_b = ed.LabelRef(b, "ground_truth", ds[b].ground_truth.detections[0].id)
    seen = []
    controller.changed.connect(seen.append)
    controller.apply(ed.Relabel((ref_a,), "edited-a"))
    controller.apply(ed.SampleTags((a, b), ("reviewed",)))
    controller.apply(ed.DeleteLabels((ref_b,)))
    stack = controller.stack
    assert stack.count() == 3 and stack.undoLimit() == 0
    panel = HistoryPanel(stack)
    qtbot.addWidget(panel)
    assert panel.view.model().rowCount() == 4  # the clean state + three edits
    assert "3 of 3" in panel.count_label.text()

    stack.undo()
    assert ref_b.label_id in [d.id for d in ds[b].ground_truth.detections]
    stack.undo()
    assert "reviewed" not in ds[a].tags and "reviewed" not in ds[b].tags
    stack.undo()
    assert _label(ds, a) == la
    stack.redo()
    stack.redo()
    stack.redo()
    assert _label(ds, a) == "edited-a" and ds[a].tags == ["reviewed"]
    assert ref_b.label_id not in [d.id for d in ds[b].ground_truth.detections]
    panel.view.setCurrentIndex(panel.view.model().index(0, 0))  # click the first row: undo all
    assert _label(ds, a) == la and _label(ds, b) == lb and ds[a].tags == []
    assert [set(ids) for ids in seen[-3:]] == [{b}, {a, b}, {a}]


def test_conflicting_undo_is_reported_not_written(ds, controller, qtbot):
    a = ds.first().id
    ref = ed.LabelRef(a, "ground_truth", ds[a].ground_truth.detections[0].id)
    controller.apply(ed.Relabel((ref,), "mine"))
    # someone else changes the sample behind this session's back
    sample = ds[a]
    sample.tags = ["theirs"]
    sample.save()
    conflicts = []
    controller.conflict.connect(lambda err, what: conflicts.append((err, what)))
    controller.stack.undo()
    assert conflicts and conflicts[0][0].sample_ids == [a]
    assert _label(ds, a) == "mine" and ds[a].tags == ["theirs"]
    controller.resolve(*conflicts[0], keep_mine=True)  # keep mine: the undo goes through
    assert _label(ds, a) != "mine" and ds[a].tags == ["theirs"]


def _press(kind, x, y, button=Qt.MouseButton.LeftButton):
    types = {"press": QEvent.Type.MouseButtonPress, "move": QEvent.Type.MouseMove,
             "release": QEvent.Type.MouseButtonRelease}
    buttons = Qt.MouseButton.NoButton if kind == "release" else button
    return QMouseEvent(types[kind], QPointF(x, y), QPointF(x, y), button, buttons, Qt.KeyboardModifier.NoModifier)


def _drag(tool, points, button=Qt.MouseButton.LeftButton):
    (x, y), rest = points[0], points[1:]
    tool.press(QPointF(x, y), _press("press", x, y, button))
    for x, y in rest:
        tool.move(QPointF(x, y), _press("move", x, y, button))
    tool.release(QPointF(x, y), _press("release", x, y, button))


@pytest.fixture
def canvas(qtbot, ds):
    from maskreview.gui.canvas import ImageCanvas, load_sample

    view = ImageCanvas()
    qtbot.addWidget(view)
    view.resize(400, 400)
    view.set_sample(load_sample(ds, ds.first().id, ["ground_truth"]))
    view.set_zoom(4.0)
    return view


def _select_first(canvas):
    inst = canvas.visible_instances("ground_truth")[0]
    canvas.select_instance(inst)
    return inst


def test_brush_stroke_paints_the_selected_mask(ds, canvas, controller):
    from maskreview.gui.canvas.edit_tools import BrushTool, full_bitmap

    inst = _select_first(canvas)
    h, w = canvas.data.height, canvas.data.width
    ops = []
    brush = BrushTool(ops.append, size=3)
    canvas.set_tool(brush)
    _drag(brush, [(10.5, 20.5), (14.5, 20.5)])
    assert len(ops) == 1 and isinstance(ops[0], ed.SetMask)
    expected = full_bitmap(inst, h, w)
    expected[19:22, 9:16] = True  # a 3-px disk is a 3x3 square (corner centres at 1.41 px)
    assert np.array_equal(ops[0].bitmap, expected)

    controller.apply(ops[0])
    det = {d.id: d for d in ds[canvas.data.sample_id].ground_truth.detections}[inst.id]
    assert np.array_equal(mk.detection_to_bitmap(det, h, w), expected)
    x, y, bw, bh = mk.mask_bbox(expected)
    assert det.bounding_box == [x / w, y / h, bw / w, bh / h]  # the box followed the mask


def test_eraser_and_brush_without_selection(ds, canvas):
    from maskreview.gui.canvas.edit_tools import BrushTool, full_bitmap

    inst = _select_first(canvas)
    h, w = canvas.data.height, canvas.data.width
    before = full_bitmap(inst, h, w)
    ys, xs = np.nonzero(before)
    cx, cy = float(xs.mean()) + 0.5, float(ys.mean()) + 0.5
    ops = []
    eraser = BrushTool(ops.append, erase=True, size=1)
    canvas.set_tool(eraser)
    _drag(eraser, [(cx, cy)])
    expected = before.copy()
    expected[int(cy), int(cx)] = False
    assert np.array_equal(ops[0].bitmap, expected) and ops[0].ref.label_id == inst.id

    canvas.select_instance(None)
    brush = BrushTool(ops.append, size=1, label_for_new=lambda: "square")
    canvas.set_tool(brush)
    _drag(brush, [(2.5, 3.5), (5.5, 3.5)])
    assert isinstance(ops[1], ed.AddInstance) and ops[1].label == "square"
    assert set(zip(*np.nonzero(ops[1].bitmap))) == {(3, 2), (3, 3), (3, 4), (3, 5)}


def test_polygon_tool_adds_an_instance(ds, canvas, controller):
    from maskreview.gui.canvas.edit_tools import PolygonTool

    tool = PolygonTool(controller.apply, label_for_new=lambda: "triangle")
    canvas.set_tool(tool)
    for x, y in [(100, 100), (140, 100), (140, 120), (100, 120)]:
        tool.press(QPointF(x, y), _press("press", x, y))
    tool.press(QPointF(100.2, 100.2), _press("press", 100.2, 100.2))  # on the first vertex: close
    sid = canvas.data.sample_id
    added = [d for d in ds[sid].ground_truth.detections if d.label == "triangle" and d.has_field("review_added")]
    assert len(added) == 1
    h, w = canvas.data.height, canvas.data.width
    expected = mk.coco_to_bitmap([[100, 100, 140, 100, 140, 120, 100, 120]], h, w)
    assert np.array_equal(mk.detection_to_bitmap(added[0], h, w), expected)
    controller.stack.undo()
    assert not [d for d in ds[sid].ground_truth.detections if d.label == "triangle" and d.has_field("review_added")]


def test_outline_tool_drag_insert_delete(ds, canvas):
    from maskreview.gui.canvas.edit_tools import OutlineTool, full_bitmap

    inst = _select_first(canvas)
    h, w = canvas.data.height, canvas.data.width
    ops = []
    tool = OutlineTool(ops.append)
    canvas.set_tool(tool)
    tool.load(inst)
    assert np.array_equal(tool.bitmap(), full_bitmap(inst, h, w))  # outline rasterizes back exactly
    poly = tool.polygons[0]
    n = len(poly)
    x, y = poly[0]
    _drag(tool, [(x, y), (x - 6, y - 6)])
    assert len(ops) == 1 and ops[0].bitmap.sum() > full_bitmap(inst, h, w).sum()
    assert ops[0].bitmap[int(y - 5), int(x - 5)]

    tool.load(inst)
    poly = tool.polygons[0]
    j = max(range(len(poly)), key=lambda k: np.hypot(*np.subtract(poly[k], poly[(k + 1) % len(poly)])))
    a, b = poly[j], poly[(j + 1) % len(poly)]  # the longest edge: its middle is far from vertices
    assert np.hypot(*np.subtract(a, b)) > 2 * tool._tolerance()
    mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    tool.press(QPointF(mx, my), _press("press", mx, my))  # on an edge: a new vertex
    assert len(tool.polygons[0]) == n + 1
    tool.release(QPointF(mx, my), _press("release", mx, my))

    tool.load(inst)
    vx, vy = tool.polygons[0][0]
    polys = [list(p) for p in tool.polygons]
    polys[0] = polys[0][1:]
    expected = mk.coco_to_bitmap([[v for pt in p for v in pt] for p in polys], h, w) & ~tool._holes
    _drag(tool, [(vx, vy)], button=Qt.MouseButton.RightButton)  # right-click a vertex: delete it
    assert isinstance(ops[-1], ed.SetMask) and np.array_equal(ops[-1].bitmap, expected)


def test_select_cycles_overlapping_instances(ds, canvas, controller, qtbot):
    from maskreview.gui.canvas import load_sample
    from maskreview.gui.canvas.edit_tools import CyclingSelectTool

    sid = canvas.data.sample_id
    h, w = canvas.data.height, canvas.data.width
    a, b = np.zeros((h, w), bool), np.zeros((h, w), bool)
    a[200:230, 200:230] = True
    b[210:240, 210:240] = True
    controller.apply(ed.AddInstance(sid, "ground_truth", "circle", bitmap=a))
    controller.apply(ed.AddInstance(sid, "ground_truth", "square", bitmap=b))
    canvas.set_sample(load_sample(ds, sid, ["ground_truth"]))
    canvas.set_tool(CyclingSelectTool())
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.centerOn(220, 220)
    at = canvas.mapFromScene(QPointF(220.5, 220.5))
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at)
    first = canvas.selected_instance
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Tab)  # the next instance under the cursor
    second = canvas.selected_instance
    assert {first.label, second.label} == {"circle", "square"}
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at)  # same pixel again: cycles on
    assert canvas.selected_instance is first


def test_class_picker_searches(qtbot):
    from maskreview.gui.class_picker import ClassPicker

    picker = ClassPicker(["circle", "square", "triangle", "ring"])
    qtbot.addWidget(picker)
    got = []
    picker.picked.connect(got.append)
    assert picker.resolve("TRI") == "triangle" and picker.resolve("Circle") == "circle"
    assert picker.resolve("r") == "r"  # ambiguous (circle, square, triangle, ring): taken as a new class
    picker.allow_new = False
    assert picker.resolve("r") is None
    qtbot.keyClicks(picker, "squ")
    qtbot.keyClick(picker, Qt.Key.Key_Return)
    assert got == ["square"]


def test_export_dialog_job_writes_the_tagged_samples(ds, qtbot, tmp_path):
    import json

    from maskreview.core.progress import Progress
    from maskreview.gui.export_dialog import ExportDialog

    sample = ds.first()
    sample.tags = ["reviewed"]
    sample.save()
    dialog = ExportDialog(ds)
    qtbot.addWidget(dialog)
    assert dialog.selection() == (["reviewed"], None, ["ground_truth"])
    dialog.out.setText(str(tmp_path / "export"))
    report = dialog.job_fn()(Progress())
    data = json.loads((tmp_path / "export" / "annotations.json").read_text())
    assert report["samples"] == 1 == len(data["images"])
    assert len(data["annotations"]) == len(sample.ground_truth.detections)
