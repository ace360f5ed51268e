"""A clipped render (``overlay.render_layer(clip=...)``: a dirty region after an edit, a lazy
layer's tile) puts exactly the pixels of one pass over every instance there, for ground truth
(hatch, solid contour) and predictions (fill, dashed contour), with instances crossing the clip
edges, cut by the image border, overlapping (later over earlier) and box-only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from maskreview.gui.canvas import overlay as ov

H, W = 600, 900


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


@pytest.mark.parametrize("tile", [97, 256])
@pytest.mark.parametrize("fills,contours", [(True, True), (False, True), (True, False)])
def test_clipped_tiles_equal_one_pass(tile, fills, contours):
    insts = _scene()
    colors = _colors(insts)
    one = ov.render_layer(insts, colors, H, W, fill_alpha=0.5, fills=fills, contours=contours)
    tiled = np.random.default_rng(2).integers(0, 255, (H, W, 4), dtype=np.uint8)  # every pixel repainted
    for y in range(0, H, tile):
        for x in range(0, W, tile):
            ov.render_layer(insts, colors, H, W, fill_alpha=0.5, fills=fills, contours=contours, out=tiled,
                            clip=(x, y, x + tile, y + tile))
    crossing = [i for i in insts if any(i.y0 < r < i.y0 + i.h for r in range(tile, H, tile))]
    assert len(crossing) >= 3  # the tile edges cut instances: the clipped writes are exercised
    assert one.any()
    assert np.array_equal(one, tiled)


def test_a_clip_leaves_what_out_holds_outside_it():
    insts = _scene(5)
    colors = _colors(insts)
    start = np.random.default_rng(1).integers(0, 255, (H, W, 4), dtype=np.uint8)
    out = ov.render_layer(insts, colors, H, W, out=start.copy(), clip=(100, 50, 400, 300))
    one = ov.render_layer(insts, colors, H, W)
    assert np.array_equal(out[50:300, 100:400], one[50:300, 100:400])
    outside = np.ones((H, W), bool)
    outside[50:300, 100:400] = False
    assert np.array_equal(out[outside], start[outside])


def test_no_instances_and_empty_clips():
    assert not ov.render_layer([], [], H, W).any()
    insts = _scene()
    start = np.full((H, W, 4), 7, np.uint8)
    for clip in [(10, 10, 10, 50), (-50, -50, 0, 0), (W, 0, W + 10, H)]:
        assert np.array_equal(ov.render_layer(insts, _colors(insts), H, W, out=start.copy(), clip=clip), start)
