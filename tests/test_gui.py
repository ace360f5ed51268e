"""The review window, driven offscreen on the demo scenes: browse, overlays, filters, zoom, drop, infer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from helpers_gui import drop_path, open_window
from maskreview.core.sources import open_source


@pytest.fixture
def window(qtbot, fo, demo_coco, tmp_path):
    win = open_window(qtbot, tmp_path, open_source(demo_coco))
    yield win
    win.close()


def grab(win) -> np.ndarray:
    QApplication.processEvents()
    image = win.canvas.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    return np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


def add_scored_predictions(dataset) -> list[float]:
    """Predictions = ground truth with known confidences, so the slider's effect is exact."""
    scores = []
    for k, sample in enumerate(dataset.iter_samples(autosave=True)):
        dets = sample.ground_truth.copy()
        for i, det in enumerate(dets.detections):
            det.confidence = round(((k * 7 + i * 3) % 10) / 10 + 0.05, 2)
            scores.append(det.confidence) if k == 0 else None
        sample["predictions"] = dets
    return scores


def test_open_and_step_through_samples(window, qtbot):
    assert window.browser.model.rowCount() == 12
    first = window.current_sample_id
    assert first is not None and window.canvas.data.fields["ground_truth"]
    assert window.canvas.image_qimage.width() == 256
    qtbot.keyClick(window, Qt.Key.Key_D)
    second = window.current_sample_id
    assert second not in (None, first)
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    qtbot.keyClick(window, Qt.Key.Key_A)
    assert window.current_sample_id == second
    qtbot.keyClick(window, Qt.Key.Key_A)
    assert window.current_sample_id == first
    # thumbnails are made in the background and cached on disk
    qtbot.waitUntil(lambda: window.browser.model.has_thumbnail(first), timeout=10000)
    from maskreview.gui.browser import thumbnail_dir

    assert list(thumbnail_dir().rglob("*.jpg"))


def test_arrow_keys_browse_but_a_focused_slider_keeps_them(window, qtbot):
    first = window.current_sample_id
    qtbot.keyClick(window, Qt.Key.Key_Right)
    second = window.current_sample_id
    assert second not in (None, first)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert window.current_sample_id == first
    slider = window.fields_panel.confidence
    slider.setFocus()
    value = slider.value()
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    assert slider.value() > value and window.current_sample_id == first


def test_toggling_fields_and_classes_changes_pixels(window, qtbot):
    canvas = window.canvas
    before = grab(window)
    n = len(canvas.data.fields["ground_truth"])
    assert canvas.visible_counts()["ground_truth"] == (n, n)
    qtbot.keyClick(window, Qt.Key.Key_G)  # hide ground truth
    hidden = grab(window)
    assert canvas.visible_counts()["ground_truth"] == (0, n)
    assert np.abs(before.astype(int) - hidden).sum() > 1000
    assert not window.actions_["toggle_gt"].isChecked()
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert np.array_equal(grab(window), before)
    # a class unchecked in the panel disappears
    label = canvas.data.fields["ground_truth"][0].label
    n_label = sum(i.label == label for i in canvas.data.fields["ground_truth"])
    items = window.fields_panel.class_list
    item = next(items.item(i) for i in range(items.count()) if items.item(i).text() == label)
    item.setCheckState(Qt.CheckState.Unchecked)
    assert canvas.visible_counts()["ground_truth"] == (n - n_label, n)
    assert not np.array_equal(grab(window), before)
    item.setCheckState(Qt.CheckState.Checked)
    # opacity and colour mode change the fills
    window.fields_panel.opacity.setValue(90)
    opaque = grab(window)
    assert np.abs(opaque.astype(int) - before).sum() > 1000
    qtbot.keyClick(window, Qt.Key.Key_V)  # colour by field
    assert canvas.style.color_mode == "field"
    assert not np.array_equal(grab(window), opaque)


def _inner_pixels(canvas, inst, on_hatch: bool) -> list[tuple[int, int]]:
    """Image pixels of ``inst`` at least 2 pixels inside its outline, under no other instance on
    show, on (or off) the ground truth's diagonal hatch (``(x + y) % HATCH < 2``)."""
    import cv2

    from maskreview.gui.canvas.overlay import HATCH

    inner = cv2.erode(inst.full_mask().astype(np.uint8), np.ones((5, 5), np.uint8), borderValue=0)
    ys, xs = np.nonzero(inner)
    xs, ys = xs + inst.x0, ys + inst.y0
    keep = ((xs + ys) % HATCH < 2) == on_hatch
    others = [o for f in canvas.data.fields for o in canvas.visible_instances(f) if o is not inst]
    return [(int(x), int(y)) for x, y in zip(xs[keep], ys[keep]) if not any(o.contains(x, y) for o in others)]


def test_overlay_pixels_follow_the_mask(window):
    """Ground truth: on its hatch the fill tints the image, between the hatch lines and with fills
    off the image shows through; a prediction's fill is solid, every interior pixel tinted."""
    canvas = window.canvas
    canvas.set_style(boxes=False, labels=False, contours=False, opacity=1.0)
    assert canvas.zoom_level() >= 1  # one image pixel covers whole device pixels
    image = canvas.data.image
    inst = max(canvas.data.fields["ground_truth"], key=lambda i: i.area)
    expected = np.array(canvas.color_of(inst))

    def screen(x, y):
        vp = canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))
        return vp.y(), vp.x()

    on, off = _inner_pixels(canvas, inst, True), _inner_pixels(canvas, inst, False)
    assert on and off
    on, off = on[len(on) // 2], off[len(off) // 2]
    shot = grab(window)
    assert np.abs(shot[screen(*on)].astype(int) - expected).max() <= 3
    assert np.abs(shot[screen(*on)].astype(int) - image[on[1], on[0]]).max() > 30  # tinted, not the image
    assert np.abs(shot[screen(*off)].astype(int) - image[off[1], off[0]]).max() <= 12  # between hatch lines
    canvas.set_style(fills=False)
    assert np.abs(grab(window)[screen(*on)].astype(int) - image[on[1], on[0]]).max() <= 12
    # a prediction (it has a score) is filled solid: on and off the hatch's diagonals alike
    canvas.set_style(fills=True)
    add_scored_predictions(window.dataset)
    window.set_dataset(window.dataset)
    window.fields_panel.confidence.setValue(0)
    canvas.set_style(boxes=False, labels=False, contours=False, opacity=1.0)
    window.actions_["toggle_gt"].trigger()  # hide ground truth: the predictions lie on it
    assert canvas.visible_counts()["ground_truth"][0] == 0
    pred = max(canvas.visible_instances("predictions"), key=lambda i: i.area)
    expected = np.array(canvas.color_of(pred))
    shot = grab(window)
    for px in (_inner_pixels(canvas, pred, True)[0], _inner_pixels(canvas, pred, False)[0]):
        assert np.abs(shot[screen(*px)].astype(int) - expected).max() <= 3


def test_confidence_slider_hides_low_scores(window, qtbot):
    add_scored_predictions(window.dataset)
    window.set_dataset(window.dataset)
    canvas = window.canvas
    preds = canvas.data.fields["predictions"]
    scores = [i.score for i in preds]
    # a fresh window starts at 0.5: detections kept for AP (down to 0.05) are not all drawn
    assert canvas.visible_counts()["predictions"] == (sum(s >= 0.5 for s in scores), len(preds))
    shown = []
    for value in (0, 30, 60, 90):
        window.fields_panel.confidence.setValue(value)
        vis, total = canvas.visible_counts()["predictions"]
        assert vis == sum(s >= value / 100 for s in scores)
        assert canvas.visible_counts()["ground_truth"][0] == len(canvas.data.fields["ground_truth"])
        assert f"predictions  ({vis}/{total})" in [window.fields_panel.field_list.item(i).text()
                                                   for i in range(window.fields_panel.field_list.count())]
        shown.append(vis)
    assert shown[0] > shown[-1]
    qtbot.keyClick(window, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert canvas.style.conf_threshold == pytest.approx(0.85)
    assert window.fields_panel.confidence.value() == 85


def test_zoom_pan_fit_and_instance_stepping(window, qtbot):
    canvas = window.canvas
    fit = canvas.zoom_level()
    assert fit != pytest.approx(1.0)
    qtbot.keyClick(window, Qt.Key.Key_1)  # a bare digit is a tag key (000eed7): the zoom stays
    assert canvas.zoom_level() == pytest.approx(fit)
    qtbot.keyClick(window, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)  # actual size
    assert canvas.zoom_level() == pytest.approx(1.0)
    center = canvas.viewport().rect().center()
    from PySide6.QtGui import QWheelEvent

    for _ in range(12):
        ev = QWheelEvent(QPointF(center), QPointF(canvas.mapToGlobal(center)), QPoint(0, 0), QPoint(0, 120),
                         Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(canvas.viewport(), ev)
    assert canvas.zoom_level() >= 14
    assert canvas.vector_mode()  # contours now drawn along pixel edges
    qtbot.keyClick(window, Qt.Key.Key_Z)
    assert canvas.zoom_level() == pytest.approx(16.0)
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert canvas.zoom_level() == pytest.approx(fit)
    qtbot.keyClick(window, Qt.Key.Key_N)
    first = canvas.framed[0]
    assert first is not None and canvas.zoom_level() > fit
    assert canvas.mapToScene(canvas.viewport().rect()).boundingRect().contains(
        QPointF(first.x0 + first.w / 2, first.y0 + first.h / 2))
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert canvas.framed[0] is not first or len(canvas.visible_instances("ground_truth")) == 1


def test_hover_shows_instance_details_in_the_status_bar(window, qtbot):
    canvas = window.canvas
    inst = max(canvas.data.fields["ground_truth"], key=lambda i: i.area)
    ys, xs = np.nonzero(inst.mask)
    k = len(xs) // 2
    pos = canvas.mapFromScene(QPointF(inst.x0 + xs[k] + 0.5, inst.y0 + ys[k] + 0.5))
    qtbot.mouseMove(canvas.viewport(), pos)
    qtbot.waitUntil(lambda: canvas.hovered_instance is not None)
    assert canvas.hovered_instance.id == inst.id or canvas.hovered_instance.contains(inst.x0 + xs[k], inst.y0 + ys[k])
    text = window.statusBar().currentMessage()  # hover goes to the status bar; the Selection panel is the selection's
    assert canvas.hovered_instance.label in text and "area" in text
    assert canvas.hovered_instance.label not in window.info_panel.selection_text()


def test_filters_search_tags_and_histogram(window, qtbot):
    browser = window.browser
    browser.search.setText("00003")
    assert browser.model.rowCount() == 1
    browser.search.clear()
    assert browser.model.rowCount() == 12
    # tag the current sample, then filter by that tag
    window.tags_panel.entry.setText("check-me")
    qtbot.keyClick(window.tags_panel.entry, Qt.Key.Key_Return)
    sid = window.current_sample_id
    assert "check-me" in window.dataset[sid].tags
    qtbot.waitUntil(lambda: window.browser.tag_filter.findData("check-me") >= 0, timeout=10000)
    browser.tag_filter.setCurrentIndex(browser.tag_filter.findData("check-me"))
    assert browser.visible_ids() == [sid]
    window.do_clear_filters()
    assert browser.model.rowCount() == 12
    # clicking a histogram bar keeps only samples with that class
    hist = window.histogram
    hist.repaint()
    cls = "ring" if "ring" in hist.counts["ground_truth"] else next(iter(hist.counts["ground_truth"]))
    rect = hist.bar_rect("ground_truth", cls)
    qtbot.mouseClick(hist, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    ids = browser.visible_ids()
    assert 0 < len(ids) < 12 or hist.counts["ground_truth"][cls] >= 12
    for i in ids:
        assert cls in [d.label for d in window.dataset[i].ground_truth.detections]
    qtbot.mouseClick(hist, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert browser.model.rowCount() == 12


def test_drop_image_runs_model_then_add_to_dataset(window, qtbot, tiny_model, demo_coco, tmp_path):
    window.model_name = str(tiny_model)
    window.engine_settings.max_detections = 8
    image = next((demo_coco.parent / "images").glob("*.png"))
    drop_path(window.canvas.viewport(), image)
    assert window.canvas.data.scratch and window.canvas.data.filepath == str(image)
    qtbot.waitUntil(lambda: bool(window.canvas.data.fields.get("predictions")), timeout=120000)
    assert len(window.canvas.data.fields["predictions"]) > 0
    assert window.actions_["add_scratch"].isEnabled()
    window.actions_["add_scratch"].trigger()
    assert len(window.dataset) == 13
    # the automatic run predicts the added image with the model that predicted the drop, and only it
    qtbot.waitUntil(lambda: window.inference is None and bool(window.canvas.data.fields.get("predictions")),
                    timeout=120000)
    assert window.canvas.data.sample_id is not None
    assert window.dataset.exists("predictions").count() == 1
    # a non-image file gets an explanation, not a crash; a drop on the browser ends in the same place
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    drop_path(window.browser.view.viewport(), other)
    assert window._message is not None and "maskreview opens images" in window._message.text()


def test_inference_in_background_shows_predictions(window, qtbot, tiny_model):
    window.model_name = str(tiny_model)
    window.engine_settings.max_detections = 8
    assert "predictions" not in window.canvas.data.fields
    window.browser.view.selectAll()
    job = window.run_inference("current")
    assert job is not None and window.progress.isVisible()
    with qtbot.waitSignal(job.finished, timeout=120000):
        pass
    qtbot.waitUntil(lambda: bool(window.canvas.data.fields.get("predictions")), timeout=10000)
    assert "predictions" in [window.fields_panel.field_list.item(i).data(Qt.ItemDataRole.UserRole)
                             for i in range(window.fields_panel.field_list.count())]
    before = grab(window)
    qtbot.keyClick(window, Qt.Key.Key_P)
    assert not np.array_equal(before, grab(window))
    assert window.dataset[window.current_sample_id].predictions is not None


def test_cancel_inference(window, qtbot, tiny_model):
    window.model_name = str(tiny_model)
    window.engine_settings.max_detections = 4
    job = window.run_inference("dataset")
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    with qtbot.waitSignal(job.failed, timeout=120000) as blocker:
        pass
    assert blocker.args[1] == "cancelled"
    qtbot.waitUntil(lambda: window.inference is None, timeout=10000)  # the window's own slot runs next


def test_undecodable_image_shows_placeholder(window, qtbot, fo, tmp_path):
    import shutil

    src = window.dataset.first().filepath
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(src, folder / "a.png")
    shutil.copy(src, folder / "b.png")
    window.set_dataset(open_source(folder))
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    window.browser.step(1)
    data = window.canvas.data
    assert data.filepath.endswith("b.png") and data.image is None and data.error
    qtbot.waitUntil(lambda: not window.info_panel.error_label.isHidden())  # the panel follows a turn later
    assert any(s in window.info_panel.error_label.text() for s in ("cannot decode", "not a readable image"))
    grab(window)  # paints the placeholder without raising
    window.browser.step(-1)
    assert window.canvas.data.error is None
    qtbot.waitUntil(lambda: window.info_panel.error_label.isHidden())


def test_database_error_gets_a_dialog(window, qtbot):
    from maskreview.core.errors import DatabaseError
    from maskreview.gui.workers import Job

    def fail(progress):
        raise DatabaseError("cannot reach FiftyOne's database at /nowhere: ServerSelectionTimeoutError")

    window._start_job(Job(fail, "opening"))
    # The job can finish before a waitSignal would connect, so wait for its effect instead.
    qtbot.waitUntil(lambda: window._message is not None, timeout=10000)
    box = window._message
    assert "database" in box.text().lower() and "What to do" in box.informativeText()
    assert window.isVisible()


def test_settings_and_shortcut_sheet(window, qtbot, tmp_path):
    from maskreview.gui.main_window import MainWindow
    from maskreview.gui.settings import Settings

    window.fields_panel.opacity.setValue(70)
    qtbot.keyClick(window, Qt.Key.Key_B)
    window.close()
    again = MainWindow(Settings(tmp_path / "gui.ini"))
    qtbot.addWidget(again)
    assert again.canvas.style.opacity == pytest.approx(0.7)
    assert again.canvas.style.boxes is False
    assert again.settings.last_dataset() == window.dataset.name
    again.do_shortcuts()
    table = again._sheet.table
    keys = [table.item(r, 2).text() for r in range(table.rowCount())]
    assert any("Ctrl+I" in k for k in keys) and any(k == "N" for k in keys)


def test_extension_points(window, qtbot):
    from PySide6.QtWidgets import QLabel

    from maskreview.gui.canvas import CanvasTool

    dock = window.add_dock(QLabel("evaluation"), "Evaluation", "right")
    assert dock.toggleViewAction() in window.view_menu.actions()

    class Recorder(CanvasTool):
        def __init__(self):
            super().__init__()
            self.points = []

        def press(self, pos, event):
            self.points.append((pos.x(), pos.y()))
            return True

    tool = Recorder()
    window.canvas.set_tool(tool)
    target = window.canvas.mapFromScene(QPointF(100.5, 60.5))
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=target)
    assert tool.points and abs(tool.points[0][0] - 100.5) < 1.5 and abs(tool.points[0][1] - 60.5) < 1.5
    window.canvas.set_tool(None)
    gt = window.canvas.data.fields["ground_truth"]
    window.apply_filter([window.current_sample_id], [gt[0].id])
    assert window.browser.model.rowCount() == 1
    assert window.canvas.visible_counts()["ground_truth"] == (1, len(gt))


def test_demo_opens_with_demo_model_predictions(qtbot, fo, demo_coco, tmp_path):
    """The demo dataset runs the demo model in the background once; reopened, it is not run again."""
    from dataclasses import replace

    from maskreview.core.demo import DEMO_DATASET
    from maskreview.gui import workers

    dataset = open_source(demo_coco, name=DEMO_DATASET)
    win = open_window(qtbot, tmp_path, dataset, wait_ms=300000)  # the inference job included
    try:
        qtbot.waitUntil(lambda: win.inference is None and not win.jobs, timeout=300000)
        assert win.canvas.data.fields.get("predictions"), "no predictions on the first image"
        assert "predictions" in win.label_fields
        assert workers.run_is_current(dataset, "predictions", "demo", win.engine_settings)
        assert not workers.run_is_current(dataset, "predictions", "demo", replace(win.engine_settings, score_thresh=0.3))
        with qtbot.waitSignal(win.dataset_changed):
            win.set_dataset(dataset)
        qtbot.waitUntil(lambda: win.inference is None and not win.jobs, timeout=30000)
        assert "up to date" in win.statusBar().currentMessage()
    finally:
        win.close()
