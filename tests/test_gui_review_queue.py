"""The review queue, verdict keys, boundary-error view and proposals in the real window (offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from helpers_modal import ModalAnswers
from helpers_review import make_dataset


@pytest.fixture(scope="module")
def shared(qapp, tmp_path_factory):
    """One window for the module, each test on a fresh dataset (a closed window's panels may still
    react to the event loop; its datasets are deleted when the module is done)."""
    import os

    from maskreview.core.store import connect
    from maskreview.gui.app import apply_palette
    from maskreview.gui.main_window import MainWindow
    from maskreview.gui.settings import Settings

    base = tmp_path_factory.mktemp("review-gui")
    old = os.environ.get("MASKREVIEW_CONFIG_DIR")
    os.environ["MASKREVIEW_CONFIG_DIR"] = str(base / "config")  # the default verdict keys
    apply_palette(qapp)
    win = MainWindow(Settings(base / "gui.ini"))
    win.resize(1200, 800)
    win.show()
    names: list[str] = []
    yield win, names
    win.state.select(None)  # nothing left for the Selection panel to read once the datasets are gone
    win.close()
    fo = connect()
    for name in names:
        if name in fo.list_datasets():
            fo.delete_dataset(name)
    if old is None:
        os.environ.pop("MASKREVIEW_CONFIG_DIR", None)
    else:
        os.environ["MASKREVIEW_CONFIG_DIR"] = old


@pytest.fixture
def window(qtbot, tmp_path, shared):
    from maskreview.core.store import connect

    win, names = shared
    qtbot.waitExposed(win)
    dataset = make_dataset(connect(), tmp_path, f"review-queue-{tmp_path.name}")
    names.append(dataset.name)
    win.canvas.set_tool(None)
    win.state.display.color_mode = "class"
    win.set_dataset(dataset)
    qtbot.waitUntil(lambda: not win.jobs, timeout=20000)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow)
    yield win
    qtbot.waitUntil(lambda: not win.jobs, timeout=30000)


def _open_queue(qtbot, win):
    feature = win.features.review_queue
    win.actions_["review_queue"].trigger()  # evaluates first: there is no evaluation yet
    qtbot.waitUntil(lambda: feature.queue is not None and not win.jobs, timeout=60000)
    return feature


def _labels(win, field="ground_truth"):
    return {d.id: d for d in win.dataset.values(f"{field}.detections", unwind=True)}


def test_the_datasets_label_progress_shows_before_any_queue(qtbot, window):
    win = window
    feature = win.features.review_queue
    qtbot.waitUntil(lambda: feature.progress_label.text() == "labels reviewed: dataset 0/6")
    win.dataset.limit(1).tag_labels("reviewed", label_fields="ground_truth")  # 3 labels, tagged in FiftyOne
    win.set_dataset(win.dataset)
    qtbot.waitUntil(lambda: feature.progress_label.text() == "labels reviewed: dataset 3/6")
    assert feature.queue is None


def test_verdict_keys_make_the_edits_and_advance(qtbot, window):
    win = window
    feature = _open_queue(qtbot, win)
    queue = feature.queue
    assert feature.index == 0 and queue[0].kind == "missing"
    assert win.current_sample_id == queue[0].sample_id
    assert win.canvas.selected_instance.id == queue[0].label_id  # the label, selected and framed
    assert win.canvas.zoom_level() > win.canvas._min_zoom() * 2

    qtbot.keyClick(win, Qt.Key.Key_Y)  # accept the missing label: promoted to the ground truth
    qtbot.waitUntil(lambda: feature.index == 1)
    promoted = [d for d in _labels(win).values() if d.has_field("source_label_id")
                and d["source_label_id"] == queue[0].label_id]
    assert len(promoted) == 1 and "reviewed" in promoted[0].tags
    assert win.canvas.selected_instance.id == queue[1].label_id

    entry = queue[1]
    assert entry.kind == "class"  # the class swap: K, the class dialog offers the model's class: OK
    answers = ModalAnswers(lambda dialog: dialog.buttons.button(dialog.buttons.StandardButton.Ok).click())
    try:
        qtbot.keyClick(win, Qt.Key.Key_K)
        qtbot.waitUntil(lambda: feature.index == 2)
    finally:
        answers.stop()
    fixed = _labels(win)[entry.label_id]
    assert fixed.label == entry.suggested_label and "reviewed" in fixed.tags
    win.activateWindow()  # back from the dialog: the window's shortcuts need it active
    qtbot.waitUntil(win.isActiveWindow)
    entry = queue[feature.index]
    before = len(_labels(win))
    qtbot.keyClick(win, Qt.Key.Key_J)  # skip: nothing changes
    assert len(_labels(win)) == before and feature.index == queue.index_of(entry.label_id) + 1
    qtbot.keyClick(win, Qt.Key.Key_J, Qt.KeyboardModifier.ShiftModifier)  # and back
    assert feature.current is entry
    spurious = queue.index_of(next(e.label_id for e in queue.entries if e.kind == "spurious"))
    feature.show_entry(spurious)
    qtbot.keyClick(win, Qt.Key.Key_X)  # reject a ground truth: deleted
    assert queue[spurious].label_id not in _labels(win)
    assert "reviewed" in feature.progress_label.text()
    done = len(feature.done)
    win.undo_stack.undo()  # a verdict is one undo step
    assert queue[spurious].label_id in _labels(win)
    assert done >= 2


def test_fix_boundary_opens_the_brush_and_progress_moves(qtbot, window):
    win = window
    feature = _open_queue(qtbot, win)
    i = next(i for i, e in enumerate(feature.queue.entries) if e.kind == "boundary")
    feature.show_entry(i)
    entry = feature.current
    sid = entry.sample_id
    before = feature.per_sample[sid][0]
    qtbot.keyClick(win, Qt.Key.Key_O)
    assert win.canvas.tool is win.edit_tools["brush"]
    assert win.canvas.selected_instance.id == entry.label_id
    assert feature.index == i  # stays on the label to be fixed
    assert feature.per_sample[sid][0] == before + 1
    assert win.browser.model.badges[sid].startswith(f"{before + 1}/")
    table = feature.panel.table  # the verdict reads in full ("fix class" and "fix boundary" both start "fix")
    assert table.item(i, 3).text() == "fix boundary"
    assert table.columnWidth(3) > table.fontMetrics().horizontalAdvance("fix boundary")
    assert feature.progress_label.text().startswith("labels reviewed: queue 1/")  # not the samples' count


def test_undoing_a_verdict_moves_the_progress_back(qtbot, window):
    win = window
    feature = _open_queue(qtbot, win)
    i = next(i for i, e in enumerate(feature.queue.entries) if e.kind == "ok")
    feature.show_entry(i)
    entry = feature.current
    sid = entry.sample_id
    before, badge = feature.per_sample[sid][0], win.browser.model.badges.get(sid)
    queued = feature.progress_label.text()
    qtbot.keyClick(win, Qt.Key.Key_Y)  # accept
    assert feature.per_sample[sid][0] == before + 1 and entry.label_id in feature.done
    assert win.browser.model.badges[sid].startswith(f"{before + 1}/")
    qtbot.waitUntil(lambda: "queue 1/" in feature.progress_label.text())
    assert feature.panel.table.item(i, 3).text() == "accept"
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo: the count goes back
    assert "reviewed" not in _labels(win)[entry.label_id].tags
    assert feature.per_sample[sid][0] == before and entry.label_id not in feature.done
    assert win.browser.model.badges.get(sid) == badge
    assert feature.panel.table.item(i, 3).text() == ""
    def queue_and_dataset(text):  # "queue r/n · sample r/n · dataset r/n labels reviewed"; the sample moved on
        parts = text.split(" · ")
        return parts[0], parts[-1]

    qtbot.waitUntil(lambda: queue_and_dataset(feature.progress_label.text()) == queue_and_dataset(queued))
    qtbot.keyClick(win, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)  # redo: done again
    assert feature.per_sample[sid][0] == before + 1 and entry.label_id in feature.done


def test_a_queue_built_again_shows_the_labels_reviewed_before(qtbot, window):
    win = window
    feature = _open_queue(qtbot, win)
    entry = feature.current
    qtbot.keyClick(win, Qt.Key.Key_Y)
    qtbot.waitUntil(lambda: feature.index == 1)
    win.actions_["review_queue"].trigger()  # built again: the accepted label is reviewed before
    qtbot.waitUntil(lambda: not win.jobs and feature.done.get(entry.label_id) == "reviewed before", timeout=60000)
    assert feature.current.label_id != entry.label_id  # it opens at the first label not reviewed
    feature.show_entry(feature.queue.index_of(entry.label_id))
    assert "[reviewed before]" in win.statusBar().currentMessage()
    qtbot.keyClick(win, Qt.Key.Key_J)  # and steps on from there
    assert feature.index == feature.queue.index_of(entry.label_id) + 1


def test_boundary_error_layer_is_the_pairs_xor(qtbot, window):
    win = window
    feature = _open_queue(qtbot, win)
    boundary = next(e for e in feature.queue.entries if e.kind == "boundary")
    feature.show_entry(feature.queue.index_of(boundary.label_id))
    win.actions_["boundary_errors"].trigger()
    errors = feature.errors
    assert win.state.display.color_mode == "errors" and errors.pairs
    assert "boundary errors" in win.canvas.layer_images  # the loupe draws it too
    data = win.canvas.data
    from maskreview.gui.canvas.edit_tools import full_bitmap

    for gt, pred, diff in errors.pairs:
        g, p = full_bitmap(gt, data.height, data.width), full_bitmap(pred, data.height, data.width)
        missed, added = diff.full(data.height, data.width)
        assert np.array_equal(missed | added, g ^ p)
    image = win.canvas.layer_images["boundary errors"]
    alpha = np.frombuffer(image.constBits(), np.uint8).reshape(data.height, data.width, 4)[..., 3]
    xor = np.zeros((data.height, data.width), bool)
    for _, _, diff in errors.pairs:
        m, a = diff.full(data.height, data.width)
        xor |= m | a
    assert np.array_equal(alpha > 0, xor)
    assert len(errors.chips) == len(errors.pairs) and "boundary" in errors.chips[0].text
    win.actions_["boundary_errors"].trigger()
    assert win.state.display.color_mode != "errors" and not errors.item.isVisible()


def test_grabcut_proposal_enter_accepts_esc_drops(qtbot, window):
    win = window
    assist = win.features.assist
    win.browser.select_row(0)
    inst = win.canvas.visible_instances("ground_truth")[0]
    win.canvas.select_label("ground_truth", inst.id)
    assist.grabcut()
    qtbot.waitUntil(lambda: assist.proposal is not None, timeout=20000)
    qtbot.keyClick(win.canvas, Qt.Key.Key_Escape)
    assert assist.proposal is None
    before = _labels(win)[inst.id].mask.copy()
    assist.grabcut()
    qtbot.waitUntil(lambda: assist.proposal is not None, timeout=20000)
    proposed = assist.proposal.bitmap.copy()
    depth = win.undo_stack.count()
    qtbot.keyClick(win.canvas, Qt.Key.Key_Return)
    assert assist.proposal is None and win.undo_stack.count() == depth + 1
    from maskreview.core.masks import detection_to_bitmap

    after = detection_to_bitmap(_labels(win)[inst.id], win.canvas.data.height, win.canvas.data.width)
    assert np.array_equal(after, proposed)
    win.undo_stack.undo()
    assert np.array_equal(_labels(win)[inst.id].mask, before)


def test_box_to_mask_tool_asks_the_model_worker_and_enter_adds_the_label(qtbot, window):
    """A box dragged with the box -> mask tool goes to the model worker (the window loads no model);
    its proposal lies inside the box, Enter adds it to the ground truth as one undo step."""
    from PySide6.QtCore import QPointF, QRectF

    from helpers_review import SIZE
    from maskreview.core.masks import detection_to_bitmap

    win = window
    assist, canvas = win.features.assist, win.canvas
    win.browser.select_row(0)
    canvas.select_instance(None)  # nothing selected: the proposal is a new ground-truth label
    win.actions_["tool_box_mask"].trigger()
    assert canvas.tool is assist.box_tool
    canvas.frame_rect(QRectF(0, 0, SIZE, SIZE))
    start, end = canvas.mapFromScene(QPointF(20, 20)), canvas.mapFromScene(QPointF(61, 61))  # the disk at (40, 40)
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(canvas.viewport(), pos=end)
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=end)
    box = win._message
    qtbot.waitUntil(lambda: assist.proposal is not None or win._message is not box, timeout=240000)
    proposal = assist.proposal
    assert proposal is not None, win._message.text()
    assert proposal.kind == "box" and proposal.label in win.classes
    x0, y0, x1, y1 = proposal.box
    assert abs(x0 - 20) <= 1 and abs(y1 - 61) <= 1
    ys, xs = np.nonzero(proposal.bitmap)
    assert len(xs) > 300 and xs.min() >= 19 and ys.max() <= 62  # the mask head's mask for that box
    before, depth = set(_labels(win)), win.undo_stack.count()
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    added = [d for i, d in _labels(win).items() if i not in before]
    assert len(added) == 1 and win.undo_stack.count() == depth + 1
    assert added[0].label == proposal.label
    assert np.array_equal(detection_to_bitmap(added[0], SIZE, SIZE), proposal.bitmap)
    win.undo_stack.undo()
    assert set(_labels(win)) == before


def test_the_legend_names_the_boundary_error_colours(qtbot, window):
    """In the errors colour mode the canvas legend says what each colour is (not only an 8 s
    status message), in the colours drawn now; other modes do not list them."""
    from maskreview.gui.canvas import boundary_errors as be
    from maskreview.gui.canvas.legend import ERROR_NAMES

    win = window
    win.browser.select_row(0)
    legend = win.canvas.legend
    assert not {r.text for r in legend.rows} & set(ERROR_NAMES)
    win.actions_["boundary_errors"].trigger()
    rows = {r.text: r.rgb for r in legend.rows}
    assert legend.isVisible()
    assert rows.get(ERROR_NAMES[0]) == be.MISSED and rows.get(ERROR_NAMES[1]) == be.ADDED
    assert "missed" in ERROR_NAMES[0] and "added" in ERROR_NAMES[1]
    assert [legend.shown_text(r) for r in legend.rows] == [r.text for r in legend.rows]  # none cut short ("…")
    win.actions_["boundary_errors"].trigger()
    assert not {r.text for r in legend.rows} & set(ERROR_NAMES)


def _label_rects(canvas, insts):
    """Viewport rectangles of the class/score/tag chips the canvas drew for these instances (none
    for a label not drawn at the last paint)."""
    return [canvas.label_chip_rects[inst.id] for inst in insts if inst.id in canvas.label_chip_rects]


def test_boundary_error_chips_leave_the_labels_readable(qtbot, window):
    """Each pair's IoU / boundary IoU chip lies clear of the class/score labels of both labels of
    the pair, at the zoom the queue frames it and zoomed out to the whole image."""
    win = window
    feature = _open_queue(qtbot, win)
    boundary = next(e for e in feature.queue.entries if e.kind == "boundary")
    feature.show_entry(feature.queue.index_of(boundary.label_id))
    win.actions_["boundary_errors"].trigger()
    canvas, errors = win.canvas, feature.errors
    assert canvas.style.labels and errors.pairs
    for fit in (False, True):
        if fit:
            canvas.fit()
        canvas.viewport().repaint()  # the label chips are laid out at a paint
        assert _label_rects(canvas, [i for pair in errors.pairs for i in pair[:2]])  # some are on show
        for chip, (gt, pred, _) in zip(errors.chips, errors.pairs):
            rect = chip.deviceTransform(canvas.viewportTransform()).mapRect(chip.boundingRect())
            for label in _label_rects(canvas, (gt, pred)):
                assert not rect.intersects(label), (fit, rect, label)


def test_undoing_a_verdict_goes_back_to_its_label(qtbot, window):
    """Ctrl+Z on a verdict brings the queue back to that label, selected and framed, so another
    verdict can be given; an undo of an edit that is no verdict leaves the queue where it is."""
    win = window
    feature = _open_queue(qtbot, win)
    queue = feature.queue
    first = queue[0]
    qtbot.keyClick(win, Qt.Key.Key_Y)  # accept
    qtbot.waitUntil(lambda: feature.index == 1)
    qtbot.keyClick(win, Qt.Key.Key_J)
    qtbot.keyClick(win, Qt.Key.Key_J)
    assert feature.index == 3
    other = queue[3]
    win.canvas.frame_rect(win.canvas.sceneRect())  # looking elsewhere
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert feature.index == 0 and feature.current is first and first.label_id not in feature.done
    assert win.current_sample_id == first.sample_id
    assert win.canvas.selected_instance.id == first.label_id
    assert feature.panel.table.currentRow() == 0
    x, y, w, h = first.box
    shown = win.canvas.mapToScene(win.canvas.viewport().rect()).boundingRect()
    assert shown.contains(x + w / 2, y + h / 2) and shown.width() < win.canvas.sceneRect().width()  # framed
    qtbot.keyClick(win, Qt.Key.Key_X)  # a verdict given again, differently: reject the prediction
    assert feature.done[first.label_id] == "reject" and feature.index == 1
    assert "fp" in _labels(win, "predictions")[first.label_id].tags

    feature.show_entry(queue.index_of(other.label_id))
    win.canvas.select_label(other.field, other.label_id)
    win.features.editing.tag_named("fix")  # an edit, not a verdict
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert feature.current is other


def test_fix_boundary_with_box_to_mask_goes_back_to_the_tool_before(qtbot, window):
    """O, Shift+M, a box, Enter: the mask is replaced and the tool is the one before O again, so
    the next verdict key acts on the queue."""
    from PySide6.QtCore import QPointF, QRectF

    win = window
    feature, assist, canvas = _open_queue(qtbot, win), win.features.assist, win.canvas
    win.features.editing.set_tool("select")
    before_tool = canvas.tool
    i = next(i for i, e in enumerate(feature.queue.entries) if e.kind == "boundary")
    feature.show_entry(i)
    entry = feature.current
    qtbot.keyClick(win, Qt.Key.Key_O)  # fix boundary: the brush on the label
    assert canvas.tool is win.edit_tools["brush"]
    qtbot.keyClick(win, Qt.Key.Key_M, Qt.KeyboardModifier.ShiftModifier)  # box -> mask
    assert canvas.tool is assist.box_tool
    x, y, w, h = entry.box
    start = canvas.mapFromScene(QPointF(x - 1, y - 1))
    end = canvas.mapFromScene(QPointF(x + w + 1, y + h + 1))
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(canvas.viewport(), pos=end)
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=end)
    message = win._message
    qtbot.waitUntil(lambda: assist.proposal is not None or win._message is not message, timeout=240000)
    assert assist.proposal is not None, win._message.text()
    assert assist.target is not None and assist.target.label_id == entry.label_id  # the label's own mask
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert assist.proposal is None
    assert canvas.tool is before_tool and win.actions_["tool_select"].isChecked()
    assert not win.actions_["tool_box_mask"].isChecked()
    nxt = feature.queue[i + 1]
    qtbot.keyClick(win, Qt.Key.Key_J)  # on to the next label
    assert feature.current is nxt
    qtbot.keyClick(win, Qt.Key.Key_Y)  # and its verdict
    assert feature.done.get(nxt.label_id) == "accept" and feature.index == i + 2
