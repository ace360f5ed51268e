"""The edit loop in the main window with real key and mouse events on the canvas: Tab, tool keys
over window shortcuts, the selection surviving the redraw after each edit, shows that never write."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication

from helpers_gui import open_window
from helpers_modal import ModalAnswers, click, pick_class
from maskreview.core.editing import ops as ed
from maskreview.core.sources import open_source

GT, PRED = "ground_truth", "predictions"


@pytest.fixture
def window(qtbot, fo, demo_coco, tmp_path, monkeypatch):
    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    dataset = open_source(demo_coco, name=f"keys-{tmp_path.name}")
    for sample in dataset.iter_samples(autosave=True):  # predictions: copies of the ground truth
        preds = [d.copy() for d in sample[GT].detections]
        for d in preds:
            d.confidence = 0.9
        sample[PRED] = fo.Detections(detections=preds)
    win = open_window(qtbot, tmp_path, dataset, (1200, 800))
    QApplication.setActiveWindow(win)
    qtbot.waitUntil(win.isActiveWindow)
    win.canvas.setFocus()
    yield win
    win.close()


def _at(win, x, y):
    """A viewport point over image point (x, y)."""
    return win.canvas.mapFromScene(QPointF(x, y))


def _click(qtbot, win, x, y, button=Qt.MouseButton.LeftButton):
    qtbot.mouseClick(win.canvas.viewport(), button, pos=_at(win, x, y))


def _key(qtbot, win, key):
    qtbot.keyClick(win.canvas, key)


def _overlapping_pair(win):
    """Two overlapping ground-truth squares on the current sample; returns (a, b, a point in both)."""
    sid, h, w = win.current_sample_id, win.canvas.data.height, win.canvas.data.width
    a, b = np.zeros((h, w), bool), np.zeros((h, w), bool)
    a[20:60, 20:60] = True
    b[40:80, 40:80] = True
    ops = [ed.AddInstance(sid, GT, "circle", bitmap=a), ed.AddInstance(sid, GT, "square", bitmap=b)]
    win.edits.apply_many(ops, "two squares")
    return ops[0].label_id, ops[1].label_id, (50.5, 50.5)


def test_tab_cycles_overlapping_instances_under_the_cursor(window, qtbot):
    from maskreview.gui import integration

    integration.set_tool(window, "select")
    a, b, (x, y) = _overlapping_pair(window)
    window.canvas.set_style(hidden_fields=frozenset({PRED}))
    _click(qtbot, window, x, y)
    first = window.canvas.selected_instance.id
    assert window.canvas.hasFocus() and first in {a, b}
    _key(qtbot, window, Qt.Key.Key_Tab)
    second = window.canvas.selected_instance.id
    assert {first, second} == {a, b}
    _key(qtbot, window, Qt.Key.Key_Tab)
    assert window.canvas.selected_instance.id == first
    _key(qtbot, window, Qt.Key.Key_Backtab)
    assert window.canvas.selected_instance.id == second
    assert window.canvas.hasFocus()  # Tab stayed on the canvas instead of moving the focus


def test_polygon_keys_win_over_window_shortcuts(window, qtbot):
    from maskreview.gui import integration

    sid = window.current_sample_id
    selected = window.canvas.data.fields[GT][0]
    window.canvas.select_instance(selected)
    n_gt = len(window.canvas.data.fields[GT])
    integration.set_tool(window, "polygon")
    tool = window.edit_tools["polygon"]
    for x, y in [(100, 100), (150, 100), (150, 140), (100, 140), (90, 90)]:
        _click(qtbot, window, x, y)
    assert len(tool.points) == 5
    _key(qtbot, window, Qt.Key.Key_Backspace)  # the last vertex, not "delete the selected label"
    assert len(tool.points) == 4 and window.undo_stack.count() == 0
    _key(qtbot, window, Qt.Key.Key_Escape)  # cancels the polygon
    assert tool.points == [] and window.undo_stack.count() == 0
    for x, y in [(100, 100), (150, 100), (150, 140)]:
        _click(qtbot, window, x, y)
    answers = ModalAnswers(pick_class(selected.label))  # the new instance's class
    _key(qtbot, window, Qt.Key.Key_Return)  # closes and adds it
    answers.stop()
    QApplication.setActiveWindow(window)  # back from the class dialog (offscreen has no window manager)
    qtbot.waitUntil(window.isActiveWindow)
    assert tool.points == [] and window.undo_stack.count() == 1, window.edits_failed
    new = window.canvas.selected_instance
    assert new is not None and new.field == GT and len(window.canvas.data.fields[GT]) == n_gt + 1
    assert new.id not in {i.id for i in window.dataset[sid][PRED].detections}
    assert new.contains(140.5, 105.5) and not new.contains(105.5, 135.5)  # the triangle
    # with no polygon in progress, Backspace is the window's again: it deletes the selected label
    _key(qtbot, window, Qt.Key.Key_Backspace)
    assert window.undo_stack.count() == 2 and window.canvas.selected_instance is None
    assert new.id not in {i.id for i in window.canvas.data.fields[GT]}


def test_brush_size_keys_and_the_size_shown(window, qtbot):
    from maskreview.gui import integration

    opacity = window.canvas.style.opacity
    integration.set_tool(window, "brush")
    brush = window.edit_tools["brush"]
    size = brush.size
    _key(qtbot, window, Qt.Key.Key_BracketRight)
    _key(qtbot, window, Qt.Key.Key_BracketRight)
    assert brush.size == pytest.approx(size * 1.25 ** 2)
    assert f"brush size {brush.size:.0f} px" in window.statusBar().currentMessage()
    _key(qtbot, window, Qt.Key.Key_BracketLeft)
    assert brush.size == pytest.approx(size * 1.25) and window.canvas.style.opacity == opacity
    integration.set_tool(window, None)  # no brush: [ and ] are the fill opacity again
    _key(qtbot, window, Qt.Key.Key_BracketLeft)
    assert window.canvas.style.opacity == pytest.approx(opacity - 0.1)


def test_shortcut_sheet_lists_the_tool_keys(window):
    from maskreview.gui.actions import ShortcutSheet

    sheet = ShortcutSheet(window)
    t = sheet.table
    rows = {(t.item(r, 1).text(), t.item(r, 2).text()) for r in range(t.rowCount())}
    assert ("Cycle overlapping instances under the cursor", "Tab, Shift+Tab") in rows
    assert ("Close and add the instance", "Enter") in rows and ("Remove the last vertex", "Backspace") in rows
    assert any(keys == "[, ]" for _, keys in rows)
    sheet.close()


def test_selection_survives_each_edit_and_goes_with_a_delete(window, qtbot, monkeypatch):
    from maskreview.gui import integration

    canvas = window.canvas
    sid = window.current_sample_id
    inst = canvas.data.fields[GT][0]
    canvas.select_instance(inst)

    integration.relabel_selected(window, "relabelled")
    assert canvas.selected_instance.id == inst.id and canvas.selected_instance.label == "relabelled"
    assert canvas.selected_instance is not inst  # a redrawn instance, found again by its label id

    integration.set_tool(window, "brush")
    ys, xs = np.nonzero(canvas.selected_instance.full_mask())
    x0, y0 = canvas.selected_instance.x0 + xs[0], canvas.selected_instance.y0 + ys[0]
    area = canvas.selected_instance.area
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=_at(window, x0 - 3, y0 - 3))
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=_at(window, x0 - 3, y0 - 3))
    assert canvas.selected_instance.id == inst.id and canvas.selected_instance.area > area

    integration.set_tool(window, "eraser")
    area = canvas.selected_instance.area
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=_at(window, x0 + 1, y0 + 1))
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=_at(window, x0 + 1, y0 + 1))
    assert canvas.selected_instance.id == inst.id and canvas.selected_instance.area < area

    integration.set_tool(window, "outline")
    outline = window.edit_tools["outline"]
    assert outline.target is canvas.selected_instance and outline.polygons  # the outline shows at once
    vx, vy = outline.polygons[0][0]
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=_at(window, vx, vy))
    qtbot.mouseMove(canvas.viewport(), _at(window, vx - 8, vy - 8))
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=_at(window, vx - 8, vy - 8))
    edited = canvas.selected_instance
    assert edited.id == inst.id and outline.target is edited  # the outline of the new mask
    assert window.undo_stack.count() == 4, window.edits_failed

    pred = canvas.data.fields[PRED][1]
    canvas.select_instance(pred)
    answers = ModalAnswers(click("Keep both"))  # the prediction duplicates a ground truth
    integration.promote_selected(window)
    answers.stop()
    promoted = canvas.selected_instance
    assert promoted.field == GT and promoted.id != pred.id  # the new ground-truth label is selected
    assert window.dataset[sid][GT].detections[-1].id == promoted.id

    window.undo_stack.undo()  # undo the promote: its label goes, and the selection with it
    assert canvas.selected_instance is None
    canvas.select_label(GT, inst.id)
    integration.delete_selected(window)
    assert canvas.selected_instance is None and inst.id not in {i.id for i in canvas.data.fields[GT]}
    window.set_dataset(window.dataset)  # reopened: the pre-review snapshots are no layer of their own
    assert f"{GT}_original" in window.dataset.get_field_schema() and window.label_fields == [GT, PRED]


def _opcounters(dataset) -> dict:
    """The database server's operation counters (every client's)."""
    import fiftyone.core.odm.database as fod

    counters = fod.get_db_client().admin.command("serverStatus")["opcounters"]
    return {k: counters[k] for k in ("insert", "update", "delete", "query")}


def test_showing_samples_never_writes(window, qtbot):
    before = _opcounters(window.dataset)
    shown = []
    for _ in range(5):
        window.browser.step(1)
        shown.append(window.current_sample_id)
    after = _opcounters(window.dataset)
    assert len(set(shown)) == 5
    assert (after["insert"], after["update"], after["delete"]) == (before["insert"], before["update"], before["delete"])
    # edits to a shown sample are based on the version read with it
    from bson import ObjectId

    from maskreview.core.editing.session import VERSION_FIELDS, version_of

    docs = window.dataset._sample_collection.find({"_id": {"$in": [ObjectId(s) for s in shown]}}, VERSION_FIELDS)
    versions = {str(d["_id"]): version_of(d) for d in docs}
    assert [window.edits.session.versions[s] for s in shown] == [versions[s] for s in shown]
