"""A whole overlay layer renders in row bands on threads (``overlay.render_layer``, issue 17's
overlay row): the pixels equal one pass over every instance, for ground truth (hatch, solid
contour) and predictions (fill, dashed contour), with instances crossing the band edges, cut by
the image border, overlapping (later over earlier) and box-only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from maskreview.gui.canvas import overlay as ov

H, W = 600, 900  # above BANDS_MIN_PIXELS: the default renders in bands


def _scene(seed: int = 3) -> list[ov.Instance]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(80):
        size = int(rng.integers(20, 260))
        canvas = np.zeros((size, size), np.uint8)
        cv2.ellipse(canvas, (size // 2, size // 2), (size // 2 - 1, int(size * rng.uniform(0.2, 0.5))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
        x0, y0 = int(rng.integers(-size // 2, W - size // 2)), int(rng.integers(-size // 2, H - size // 2))
        score = None if k % 3 == 0 else float(rng.uniform(0.1, 1))
        out.append(ov.Instance("f", f"i{k}", f"class_{k % 4}", score, x0, y0, size, size, canvas.astype(bool)))
    out.append(ov.Instance("f", "boxonly", "class_1", 0.8, 300, 250, 120, 140, None))
    out.append(ov.Instance("f", "boxonly_gt", "class_2", None, 500, 100, 90, 400, None))
    return out


def _colors(insts):
    return [ov.class_color(i.label, [f"class_{k}" for k in range(4)]) for i in insts]


@pytest.mark.parametrize("bands", [2, 3, 7])
@pytest.mark.parametrize("fills,contours", [(True, True), (False, True), (True, False)])
def test_bands_equal_one_pass(bands, fills, contours):
    insts = _scene()
    colors = _colors(insts)
    rows = ov._band_rows(insts, H, W, bands)  # noqa: SLF001
    assert len(rows) == bands + 1 and rows[0] == 0 and rows[-1] == H
    crossing = [i for i in insts if any(i.y0 < r < i.y0 + i.h for r in rows[1:-1])]
    assert len(crossing) >= 3  # the band edges cut instances: the clipped writes are exercised
    one = ov.render_layer(insts, colors, H, W, fill_alpha=0.5, fills=fills, contours=contours, bands=1)
    banded = ov.render_layer(insts, colors, H, W, fill_alpha=0.5, fills=fills, contours=contours, bands=bands)
    assert one.any()
    assert np.array_equal(one, banded)


def test_bands_paint_over_what_out_holds_as_one_pass_does():
    insts = _scene(5)
    colors = _colors(insts)
    start = np.random.default_rng(1).integers(0, 255, (H, W, 4), dtype=np.uint8)
    one = ov.render_layer(insts, colors, H, W, out=start.copy(), bands=1)
    banded = ov.render_layer(insts, colors, H, W, out=start.copy(), bands=2)
    assert np.array_equal(one, banded)
    assert not np.array_equal(one, ov.render_layer(insts, colors, H, W, bands=1))  # ``out`` was kept under


def test_no_instances_and_small_layers():
    assert not ov.render_layer([], [], H, W).any()
    insts = [i for i in _scene() if i.x0 >= 0 and i.y0 >= 0 and i.x0 + i.w <= 200 and i.y0 + i.h <= 150]
    small = ov.render_layer(insts, _colors(insts), 150, 200)  # below BANDS_MIN_PIXELS: one pass
    assert np.array_equal(small, ov.render_layer(insts, _colors(insts), 150, 200, bands=1))
