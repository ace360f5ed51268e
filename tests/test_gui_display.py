"""What the screen shows, measured in pixels: thumbnails keep their aspect, HiDPI is sharp, icons ship."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtGui import QImage

REPO = Path(__file__).resolve().parents[1]


def image_array(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    return np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


def test_thumbnails_keep_aspect_and_fill_their_cells(qtbot, tmp_path):
    from maskreview.gui.browser import THUMB, SampleBrowser

    wide, tall = tmp_path / "wide.png", tmp_path / "tall.png"
    cv2.imwrite(str(wide), np.full((100, 200, 3), (0, 0, 255), np.uint8))  # red, 2:1
    cv2.imwrite(str(tall), np.full((300, 100, 3), (255, 0, 0), np.uint8))  # blue, 1:3
    browser = SampleBrowser()
    qtbot.addWidget(browser)
    browser.resize(500, 400)
    browser.show()
    qtbot.waitExposed(browser)
    browser.set_samples(["a", "b"], [str(wide), str(tall)])
    browser.view.viewport().repaint()  # paint asks for the thumbnails
    qtbot.waitUntil(lambda: browser.model.has_thumbnail("a") and browser.model.has_thumbnail("b"), timeout=20000)
    pixels = image_array(browser.view.viewport().grab().toImage())
    dpr = browser.devicePixelRatioF()
    for channel, (want_w, want_h) in ((0, (THUMB, THUMB / 2)), (2, (THUMB / 3, THUMB))):
        others = [c for c in range(3) if c != channel]
        hit = (pixels[..., channel] > 200) & np.all(pixels[..., others] < 60, axis=2)
        ys, xs = np.nonzero(hit)
        assert len(xs), "thumbnail not drawn"
        w, h = (xs.max() - xs.min() + 1) / dpr, (ys.max() - ys.min() + 1) / dpr
        assert abs(w - want_w) <= 2 and abs(h - want_h) <= 2, (channel, w, h)


def test_icon_lookup_resolves_to_packaged_files(qapp):
    """Every icon the app asks for exists in top-level icons/ (the package maskreview.icons), matched by
    pyproject's package data."""
    from maskreview.gui.actions import ACTIONS, ICONS_DIR, icon

    package = REPO / "icons"
    assert ICONS_DIR.resolve() == package.resolve(), "icons/ is the one source of the app's icons"
    names = {spec.icon for spec in ACTIONS if spec.icon} | {"app"}
    files = [ICONS_DIR / f"{name}.svg" for name in sorted(names)]
    missing = [f.name for f in files if not f.is_file()]
    assert not missing, f"icons named by actions but missing: {missing}"
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["maskreview.icons"]
    for f in files:
        rel = f.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not in the wheel's package data {patterns}"
    assert not icon("fit").isNull() and icon("no-such-icon").isNull()


_HIDPI_CHILD = r"""
import json
import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QApplication
app = QApplication([])
from maskreview.gui.actions import icon
from maskreview.gui.browser import THUMB, SampleBrowser
from maskreview.gui.canvas.overlay import Instance
from maskreview.gui.canvas.sample import SampleData
from maskreview.gui.canvas.view import ImageCanvas
from test_gui_display import image_array

image = np.zeros((64, 96, 3), np.uint8)
image[np.indices((64, 96)).sum(0) % 2 == 1] = 255  # one-pixel checkerboard
mask = np.zeros((20, 20), bool)
mask[5:15, 5:15] = True
inst = Instance("ground_truth", "a", "square", None, 30, 20, 20, 20, mask)
canvas = ImageCanvas()
canvas.resize(400, 300)
canvas.show()
canvas.set_sample(SampleData("s", "x.png", image, None, 64, 96, {"ground_truth": [inst]}))
canvas.set_style(fills=False, boxes=False, labels=False, contours=False)
canvas.actual_size()
zoom = canvas.zoom_level()
grab = canvas.viewport().grab().toImage()
g = image_array(grab)[..., 0]  # the viewport's background is white, the image starts black
ys, xs = np.nonzero(g == 0)
region = g[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(int)
exact = float((region == 255 * (np.indices(region.shape).sum(0) % 2)).mean())
canvas.set_style(contours=True)
canvas.set_zoom(16.0)
canvas.centerOn(40, 30)
pixels = image_array(canvas.viewport().grab().toImage()).astype(int)
dpr = canvas.devicePixelRatioF()
edge = canvas.mapFromScene(35, 25)  # the left edge of the square's first mask column, row 25
row = int(edge.y() * dpr) + 8
hit = np.all(np.abs(pixels[row] - np.array(canvas.color_of(inst))) < 30, axis=1)
cols = np.nonzero(hit)[0]
left = cols[cols < edge.x() * dpr + 40]
browser = SampleBrowser()
browser.show()
pix = icon("fit").pixmap(QSize(24, 24), dpr)
print("RESULT" + json.dumps({
    "dpr": dpr, "zoom": zoom, "logical": [canvas.viewport().width(), canvas.viewport().height()],
    "grab": [grab.width(), grab.height()], "image_device_px": [int(region.shape[1]), int(region.shape[0])],
    "exact": exact, "edge_device_x": edge.x() * dpr, "contour_cols": left.tolist(),
    "thumb_size": browser.model.thumb_size, "icon_px": [pix.width(), pix.height()]}))
"""


def _hidpi(scale: str) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": scale,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", _HIDPI_CHILD], capture_output=True, text=True, env=env, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, out.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT"):])


def test_canvas_is_sharp_at_device_pixel_ratio_2():
    """At scale 2 the canvas paints device pixels: 1:1 is one image pixel per device pixel, exact;
    16x puts contours on pixel edges at the same logical width; thumbnails and icons use 2x pixmaps."""
    r = _hidpi("2")
    assert r["dpr"] == 2.0
    assert r["grab"] == [2 * r["logical"][0], 2 * r["logical"][1]]  # not a half-size image scaled up
    assert r["zoom"] == 1.0 and r["image_device_px"] == [96, 64]
    assert r["exact"] == 1.0  # every checkerboard pixel sharp: no blur, no 2x2 blocks
    edge, cols = r["edge_device_x"], r["contour_cols"]
    assert len(cols) == 4 and min(cols) >= edge - 2 and max(cols) <= edge + 1  # 2 logical px = 4 device px, on the edge
    assert r["thumb_size"] == 256
    assert r["icon_px"] == [48, 48]
    assert _hidpi("1")["contour_cols"].__len__() == 2  # same logical width at scale 1


def test_a_stale_thumbnail_is_made_again_once_after_the_edit_steps_paints(qtbot, tmp_path):
    """A thumbnail an edit made stale keeps its old pixmap through the step's paints and is made
    again once, after them (its worker reads and decodes the whole sample: on a dense one it ran
    beside the edit's write and paint, #17.3); a burst of edits makes it once."""
    from maskreview.gui.browser import SampleBrowser

    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.full((100, 200, 3), (0, 0, 255), np.uint8))
    made = []
    browser = SampleBrowser()
    qtbot.addWidget(browser)
    browser.resize(500, 400)
    browser.show()
    qtbot.waitExposed(browser)
    model = browser.model
    model.overlay_source = lambda ids: (made.append(list(ids)), {})[1]
    model.set_samples(["a"], [str(path)])
    browser.view.viewport().repaint()
    qtbot.waitUntil(lambda: model.has_thumbnail("a"), timeout=20000)
    assert made == [["a"]]
    for _ in range(3):  # three strokes, each repainted at once
        model.invalidate(["a"])
        browser.view.viewport().repaint()
    assert made == [["a"]] and not model.has_thumbnail("a")  # the old pixmap on show, nothing started
    qtbot.waitUntil(lambda: model.has_thumbnail("a"), timeout=20000)
    qtbot.wait(50)
    assert made == [["a"], ["a"]]
