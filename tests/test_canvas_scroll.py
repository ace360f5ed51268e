"""A pan from 1:1 up scrolls the pixels already painted and repaints the exposed edge bands only
(#17.3 pan/zoom frame); what is on screen then is what a whole repaint draws: boxes (the dashes
of predictions' boxes across the viewport's edge too), label chips, fills, zoomed-in contours, the
legend. Zoom steps land back on 1:1 exactly."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_gui import settle, shown
from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from maskreview.gui.canvas import overlay as ov

H, W = 520, 760  # the scene; the viewport is smaller at every zoom tried


def _scene(predictions: bool = True) -> dict:
    """Ground truth and predictions on a loose grid (chips clear of each other), boxes of two
    classes, boxes across the viewport's edges as it pans (the predictions' dashed)."""
    rng = np.random.default_rng(7)
    gt, pred = [], []
    for k, (y, x) in enumerate((y, x) for y in range(30, H - 60, 95) for x in range(20, W - 60, 130)):
        w, h = int(rng.integers(30, 60)), int(rng.integers(30, 55))
        mask = np.zeros((h, w), bool)
        mask[2:-2, 3:-3] = True
        label = ("cell", "debris")[k % 2]
        gt.append(ov.Instance("ground_truth", f"g{k}", label, None, x, y, w, h, mask))
        pred.append(ov.Instance("predictions", f"p{k}", label, 0.5 + k % 5 / 10, x + 3, y + 2, w, h, mask))
    return {"ground_truth": gt, "predictions": pred} if predictions else {"ground_truth": gt}


class Paints(QObject):
    """The regions of a widget's paint events."""

    def __init__(self):
        super().__init__()
        self.regions = []

    def eventFilter(self, obj, event):  # noqa: N802
        if event.type() == QEvent.Type.Paint:
            self.regions.append(event.region())
        return False


def _on_screen(canvas) -> np.ndarray:
    """The viewport's pixels as the window shows them (its backing store: what scrolling kept and
    the paints since drew), not a fresh render."""
    vp = canvas.viewport()
    at = vp.mapTo(canvas.window(), vp.rect().topLeft())
    image = QApplication.primaryScreen().grabWindow(canvas.window().winId(), at.x(), at.y(),
                                                    vp.width(), vp.height()).toImage()
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return arr[:, :image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def _canvas(qtbot, predictions: bool = True):
    from maskreview.gui.canvas import ImageCanvas
    from maskreview.gui.canvas.sample import SampleData

    view = shown(qtbot, ImageCanvas(), (480, 360))
    image = np.random.default_rng(3).integers(30, 120, (H, W, 3), dtype=np.uint8)
    view.set_classes(["cell", "debris"])
    view.set_sample(SampleData("s", "x.png", image, None, H, W, _scene(predictions)))
    view.set_style(labels=True, boxes=True, conf_threshold=0.0)
    settle(qtbot)
    return view


@pytest.fixture
def canvas(qtbot):
    return _canvas(qtbot)


def _painted_after(qtbot, canvas, step) -> list:
    paints = Paints()
    canvas.viewport().installEventFilter(paints)
    step()
    qtbot.waitUntil(lambda: bool(paints.regions), timeout=2000)
    settle(qtbot)
    canvas.viewport().removeEventFilter(paints)
    return paints.regions


@pytest.mark.parametrize("zoom", [1.0, 2.0, 3.0, 6.0])
@pytest.mark.parametrize("predictions", [False, True])
def test_a_pan_scrolled_in_place_shows_what_a_whole_repaint_draws(qtbot, zoom, predictions):
    canvas = _canvas(qtbot, predictions)
    canvas.set_zoom(zoom)
    assert canvas.zoom_level() == zoom
    canvas.centerOn(W / 2, H / 2)
    settle(qtbot)
    canvas.viewport().repaint()  # a whole paint: the chips laid out
    hbar, vbar = canvas.horizontalScrollBar(), canvas.verticalScrollBar()
    whole = canvas.viewport().rect()
    for dx, dy in ((37, 0), (0, 29), (-23, -31), (41, 17), (-60, 0)):
        regions = _painted_after(qtbot, canvas, lambda: (hbar.setValue(hbar.value() + dx),
                                                          vbar.setValue(vbar.value() + dy)))
        area = sum(r.width() * r.height() for reg in regions for r in reg)
        assert area < 0.6 * whole.width() * whole.height(), f"the pan ({dx}, {dy}) repainted {[list(reg) for reg in regions]}"
        scrolled = _on_screen(canvas)
        _painted_after(qtbot, canvas, canvas.viewport().update)
        full = _on_screen(canvas)
        differ = np.argwhere(np.any(scrolled != full, axis=-1))
        assert not differ.size, (f"zoom {zoom}, pan ({dx}, {dy}): {len(differ)} pixels differ, "
                                 f"rows {differ[:, 0].min()}-{differ[:, 0].max()}, "
                                 f"columns {differ[:, 1].min()}-{differ[:, 1].max()}")


@pytest.mark.parametrize("zoom", [0.8, 1.5625])
def test_zoomed_out_or_between_whole_numbers_a_pan_repaints_the_whole_viewport(canvas, qtbot, zoom):
    """Below 1:1 the image is scaled smoothly from mip levels; at 1.5625x device pixel centres
    fall on image pixel edges, where a band would sample other pixels than a whole repaint."""
    canvas.set_zoom(zoom)
    settle(qtbot)
    hbar = canvas.horizontalScrollBar()
    regions = _painted_after(qtbot, canvas, lambda: hbar.setValue(hbar.value() + 30))
    assert any(reg.boundingRect() == canvas.viewport().rect() for reg in regions)


def test_one_to_one_and_zoom_steps_back_to_it_land_on_it_exactly(canvas, qtbot):
    """1:1 from the fitted view, and zoom steps in and out back to it, are 1.0: before, half the
    widths tried gave 0.9999999999999999 (fit x 1 / fit), drawn smoothly as if zoomed out."""
    for width in range(300, 700, 7):
        canvas.resize(width, 360)
        canvas.fit()
        canvas.actual_size()
        assert canvas.zoom_level() == 1.0, width
        for factor in (1.25, 1.25, 0.8, 1.25, 0.8, 0.8):
            canvas.zoom_by(factor)
        assert canvas.zoom_level() == 1.0, width
        assert not canvas._image_item.smooth  # noqa: SLF001


def test_the_legend_stays_in_its_corner_as_the_view_pans(canvas, qtbot):
    canvas.set_zoom(1.0)
    settle(qtbot)
    legend = canvas.legend
    assert legend.isVisible()
    home = legend.geometry()
    hbar, vbar = canvas.horizontalScrollBar(), canvas.verticalScrollBar()
    _painted_after(qtbot, canvas, lambda: (hbar.setValue(hbar.value() + 40), vbar.setValue(vbar.value() + 25)))
    assert legend.geometry() == home


def test_pans_away_and_back_show_what_a_whole_repaint_draws(canvas, qtbot):
    """Random pans at 1:1 there and back (boxes and their dashes, fills, the legend): every frame
    equals a whole repaint. Label chips are left out: a pan keeps the chips on screen where they
    are and puts a chip it brings into view clear of them, where a whole layout may stack two
    overlapping chips the other way round (the one drawn first keeps its place)."""
    canvas.set_style(labels=False)
    canvas.set_zoom(1.0)
    canvas.centerOn(W / 2, H / 2)
    settle(qtbot)
    canvas.viewport().repaint()
    hbar, vbar = canvas.horizontalScrollBar(), canvas.verticalScrollBar()
    rng = np.random.default_rng(6)
    for _ in range(30):
        dx, dy = (int(v) for v in rng.integers(-60, 61, 2))
        if not 0 <= hbar.value() + dx <= hbar.maximum() or not 0 <= vbar.value() + dy <= vbar.maximum():
            continue
        _painted_after(qtbot, canvas, lambda: (hbar.setValue(hbar.value() + dx), vbar.setValue(vbar.value() + dy)))
        scrolled = _on_screen(canvas)
        _painted_after(qtbot, canvas, canvas.viewport().update)
        differ = np.argwhere(np.any(scrolled != _on_screen(canvas), axis=-1))
        assert not differ.size, f"pan ({dx}, {dy}): {len(differ)} pixels differ, rows {differ[:, 0].min()}-{differ[:, 0].max()}"


@pytest.mark.parametrize("size", [(400, 300), (401, 301)])
def test_at_one_to_one_the_image_pixels_are_shown_as_they_are(qtbot, size):
    """1:1 draws with the smooth hint where image pixels land on whole device pixels (Qt spreads
    those draws over its threads): the pixels must still be the image's, centred in a viewport an
    odd number of pixels wider or not."""
    from maskreview.gui.canvas import ImageCanvas
    from maskreview.gui.canvas.sample import SampleData

    view = shown(qtbot, ImageCanvas(), size)
    image = np.random.default_rng(5).integers(0, 255, (87, 121, 3), dtype=np.uint8)
    view.set_sample(SampleData("s", "x.png", image, None, 87, 121, {}))
    view.set_zoom(1.0)
    settle(qtbot)
    _painted_after(qtbot, view, view.viewport().update)
    screen = _on_screen(view)
    at = view.mapFromScene(0, 0)
    assert np.array_equal(screen[at.y():at.y() + 87, at.x():at.x() + 121], image)
