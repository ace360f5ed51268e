"""``overlay.render_layer`` against a plain reference: each instance pasted into a whole-image
canvas and drawn with whole-image numpy (hatch ``(x + y) % HATCH < 2``, the ground truth's edge
ring = its box mask minus a 5x5 erosion, the predictions' dashes every other ``DASH`` points
of each ``findContours`` outline), later instances over earlier ones. The renderer's per-box
bookkeeping (boxes clipped at the image edges, hatch phase, offsets, box-only labels) must give
the same pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from maskreview.gui.canvas import overlay as ov

H, W = 90, 130


def _scene() -> list[ov.Instance]:
    rng = np.random.default_rng(11)
    insts = []
    for k in range(40):
        w, h = int(rng.integers(3, 40)), int(rng.integers(3, 40))
        x0, y0 = int(rng.integers(-20, W - 2)), int(rng.integers(-20, H - 2))  # some stick out of the image
        mask = None if k % 9 == 4 else rng.random((h, w)) < 0.8
        if mask is not None:
            mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)).astype(bool)
        insts.append(ov.Instance("f", str(k), "c", None if k % 2 else 0.7, x0, y0, w, h, mask))
    return insts


def _pixel(b: float, g: float, r: float, a: float) -> np.uint32:
    return np.array([int(b), int(g), int(r), int(a)], np.uint8).view(np.uint32)[0]


def _reference(insts, colors, fill_alpha: float, fills: bool, contours: bool) -> np.ndarray:
    out = np.zeros((H, W), np.uint32)
    yy, xx = np.mgrid[:H, :W]
    hatch = (xx + yy) % ov.HATCH < 2
    a = fill_alpha
    for inst, (r, g, b) in zip(insts, colors):
        xs, ys, xe, ye = max(inst.x0, 0), max(inst.y0, 0), min(inst.x0 + inst.w, W), min(inst.y0 + inst.h, H)
        if xs >= xe or ys >= ye:
            continue
        box = inst.full_mask()[ys - inst.y0:ye - inst.y0, xs - inst.x0:xe - inst.x0]  # the part inside the image
        whole = np.zeros((H, W), bool)
        whole[ys:ye, xs:xe] = box
        if fills and a > 0:
            out[whole if inst.score is not None else whole & hatch] = _pixel(b * a, g * a, r * a, 255 * a)
        if not contours:
            continue
        line = _pixel(b, g, r, 255)
        mu = np.ascontiguousarray(box.astype(np.uint8))
        if inst.score is None:
            inner = cv2.erode(mu, np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
            ring = np.zeros((H, W), bool)
            ring[ys:ye, xs:xe] = (mu == 1) & (inner == 0)
            out[ring] = line
        else:
            for outline in cv2.findContours(mu, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)[0]:
                pts = outline.reshape(-1, 2)
                on = (np.arange(len(pts)) // ov.DASH) % 2 == 0
                out[pts[on, 1] + ys, pts[on, 0] + xs] = line
    return out.view(np.uint8).reshape(H, W, 4)


@pytest.mark.parametrize("fill_alpha,fills,contours", [(0.45, True, True), (0.3, True, False), (0.45, False, True),
                                                       (0.0, True, True), (1.0, True, True)])
def test_render_layer_equals_the_whole_image_reference(fill_alpha, fills, contours):
    insts = _scene()
    colors = [ov.class_color(str(k)) for k in range(len(insts))]
    got = ov.render_layer(insts, colors, H, W, fill_alpha=fill_alpha, fills=fills, contours=contours)
    want = _reference(insts, colors, fill_alpha, fills, contours)
    assert want.any()
    assert np.array_equal(got, want), f"{int((got != want).any(-1).sum())} pixels differ"
