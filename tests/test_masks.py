"""Exact conversions between COCO polygons / RLE, bitmaps and FiftyOne detections."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from maskreview.core import masks as mk

H, W = 37, 53


def roundtrip(bitmap):
    det = mk.bitmap_to_detection(bitmap, "thing")
    return det, mk.detection_to_bitmap(det, *bitmap.shape)


def test_ring_with_hole_roundtrips_exactly(fo):
    yy, xx = np.mgrid[:H, :W]
    r = np.hypot(yy - 18, xx - 25)
    ring = (r < 15) & (r >= 7)
    det, back = roundtrip(ring)
    assert np.array_equal(back, ring)
    assert det.mask.shape == (29, 29)  # a box mask, not a full-image one
    assert not back[18, 25]  # the hole stays a hole


def test_several_parts_and_every_border(fo):
    m = np.zeros((H, W), bool)
    m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = True  # touches all four borders
    m[10:14, 10:12] = True  # a second, separate part
    det, back = roundtrip(m)
    assert np.array_equal(back, m)
    assert det.bounding_box == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("y,x", [(0, 0), (H - 1, W - 1), (5, 40)])
def test_one_pixel_objects(fo, y, x):
    m = np.zeros((H, W), bool)
    m[y, x] = True
    det, back = roundtrip(m)
    assert np.array_equal(back, m)
    assert det.mask.shape == (1, 1)
    assert mk.detection_area(det, H, W) == 1


def test_empty_mask_keeps_its_box(fo):
    det = mk.bitmap_to_detection(np.zeros((H, W), bool), "ghost", empty_box=(4, 5, 10, 6))
    assert det.bounding_box == pytest.approx([4 / W, 5 / H, 10 / W, 6 / H])
    assert mk.detection_to_bitmap(det, H, W).sum() == 0


def test_fractional_box_pastes_at_rounded_top_left(fo):
    mask = np.ones((3, 4), bool)
    det = fo.Detection(label="a", bounding_box=[10.6 / W, 7.4 / H, 3.9 / W, 2.8 / H], mask=mask)
    out = mk.detection_to_bitmap(det, H, W)
    ys, xs = np.nonzero(out)
    assert (ys.min(), xs.min(), ys.max(), xs.max()) == (7, 11, 9, 14)
    assert out.sum() == 12


def test_mask_partly_outside_image_is_clipped(fo):
    det = fo.Detection(label="a", bounding_box=[-2 / W, -1 / H, 5 / W, 4 / H], mask=np.ones((4, 5), bool))
    out = mk.detection_to_bitmap(det, H, W)
    assert out.sum() == 3 * 3 and out[:3, :3].all()


def test_box_without_mask_fills_its_box(fo):
    det = fo.Detection(label="a", bounding_box=[0.1, 0.2, 0.3, 0.4])
    out = mk.detection_to_bitmap(det, 100, 100)
    assert out.sum() == 30 * 40


def test_polygons_multi_part_match_pycocotools():
    polys = [[2, 2, 20, 2, 20, 15, 2, 15], [30.5, 20.2, 45.7, 21.1, 38.3, 33.9]]
    expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, H, W))).astype(bool)
    assert np.array_equal(mk.coco_to_bitmap(polys, H, W), expected)
    assert expected.sum() > 0


def test_uncompressed_and_compressed_rle_agree():
    rng = np.random.default_rng(3)
    m = rng.random((H, W)) > 0.6
    compressed = mk.rle_to_json(mk.encode_rle(m))
    # uncompressed RLE: run lengths in column-major order, starting with zeros
    flat = m.flatten(order="F").astype(int)
    change = np.flatnonzero(np.diff(np.r_[0, flat, 1 - flat[-1]]))
    counts = np.diff(np.r_[0, change]).tolist()
    if flat[0]:
        counts = [0] + counts
    counts = counts[: len(counts)]
    assert sum(counts) >= H * W
    counts[-1] -= sum(counts) - H * W
    counts = [c for i, c in enumerate(counts) if c or i == 0]
    uncompressed = {"size": [H, W], "counts": counts}
    assert np.array_equal(mk.coco_to_bitmap(uncompressed, H, W), m)
    assert np.array_equal(mk.coco_to_bitmap(compressed, H, W), m)


@pytest.mark.parametrize("bad,message", [
    ([[1, 2, 3, 4, 5]], "odd number"),
    ([[1, 2, 3, 4]], "at least 3"),
    ([["a", 1, 2, 3, 4, 5]], "flat list of numbers"),
    ({"size": [H + 1, W], "counts": "abc"}, "does not match"),
    ({"size": [H, W], "counts": [1, 2]}, "sum to"),
    ("nonsense", "neither polygons nor RLE"),
])
def test_malformed_segmentations_are_refused(bad, message):
    with pytest.raises(mk.MaskError, match=message):
        mk.coco_to_bitmap(bad, H, W)


def test_polygons_from_bitmap_rasterize_back_to_the_same_pixels():
    yy, xx = np.mgrid[:H, :W]
    rect = (yy >= 5) & (yy < 20) & (xx >= 8) & (xx < 30)
    disk = np.hypot(yy - 18, xx - 40) < 9
    for m in (rect, disk):
        polys = mk.bitmap_to_polygons(m)
        assert len(polys) == 1
        assert np.array_equal(mk.coco_to_bitmap(polys, H, W), m)
