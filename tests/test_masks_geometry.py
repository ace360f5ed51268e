"""The geometry in ``core/masks.py`` (issue #15): rounding, clipping, pasting, the tight box, IoU."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from maskreview.core import masks as mk


def _reference_bbox(bitmap):
    rows, cols = np.flatnonzero(bitmap.any(axis=1)), np.flatnonzero(bitmap.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def test_round_half_up_rounds_halves_up_for_floats_and_arrays():
    assert [mk.round_half_up(v) for v in (0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, 3.0)] == [1, 2, 3, 0, -1, 2, 3]
    assert all(isinstance(mk.round_half_up(v), int) for v in (0.5, np.float64(2.5)))
    out = mk.round_half_up(np.array([0.5, 1.5, -0.5, 2.49]))
    assert out.dtype == np.int64 and out.tolist() == [1, 2, 0, 2]


def test_clip_box_keeps_the_part_inside_the_image():
    assert mk.clip_box(2, 3, 4, 5, 10, 10) == (2, 3, 6, 8)
    assert mk.clip_box(-2, -3, 4, 5, 10, 10) == (0, 0, 2, 2)
    assert mk.clip_box(8, 9, 4, 5, 10, 10) == (8, 9, 10, 10)
    assert mk.clip_box(10, 0, 4, 5, 10, 10) is None  # just right of the image
    assert mk.clip_box(-4, 0, 4, 5, 10, 10) is None  # just left of it
    assert mk.clip_box(0, 0, 0, 5, 10, 10) is None  # an empty box


@pytest.mark.parametrize("x0,y0", [(2, 3), (-2, -1), (7, 8), (-5, 0), (12, 3)])
def test_paste_then_crop_gives_the_visible_part_back(x0, y0):
    rng = np.random.default_rng(abs(x0 * 31 + y0))
    mask = rng.random((4, 5)) > 0.4
    full = mk.paste(x0, y0, mask, 10, 10)
    assert full.shape == (10, 10) and full.dtype == bool
    expected = np.zeros((30, 30), bool)  # the same paste on a canvas big enough, then cut
    expected[10 + y0:10 + y0 + 4, 10 + x0:10 + x0 + 5] = mask
    assert np.array_equal(full, expected[10:20, 10:20])
    back = mk.crop(full, x0, y0, 5, 4)
    xs, ys, part = mk.visible(x0, y0, mask, 10, 10)
    assert back.shape == mask.shape
    assert np.array_equal(back[ys - y0:ys - y0 + part.shape[0], xs - x0:xs - x0 + part.shape[1]], part)
    assert back.sum() == part.sum() == full.sum()


def test_visible_is_empty_for_a_mask_outside_the_image():
    xs, ys, part = mk.visible(12, 3, np.ones((4, 5), bool), 10, 10)
    assert part.size == 0 and (xs, ys) == (12, 3)


def test_mask_bbox_agrees_with_the_row_and_column_reduction():
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = rng.integers(1, 40, size=2)
        bitmap = np.zeros((h, w), bool)
        if rng.random() < 0.9:
            y, x = rng.integers(0, h), rng.integers(0, w)
            bitmap[y:y + rng.integers(1, 10), x:x + rng.integers(1, 10)] = rng.random() < 0.95
            bitmap &= rng.random((h, w)) < 0.8
        assert mk.mask_bbox(bitmap) == _reference_bbox(bitmap)
        assert mk.mask_bbox(np.asfortranarray(bitmap)) == _reference_bbox(bitmap)
    assert mk.mask_bbox(np.zeros((5, 5), bool)) is None
    assert mk.mask_bbox(np.zeros((0, 5), bool)) is None
    assert mk.mask_bbox(np.array([[0, 255], [0, 0]], np.uint8)) == (1, 0, 1, 1)  # any non-zero counts


def test_mask_bbox_of_a_whole_image_bitmap_agrees_too():
    """Past ``_BYTE_SEARCH_MAX`` pixels (an edit's 4096² bitmap) it reduces rows instead."""
    rng = np.random.default_rng(1)
    h, w = 2048, mk._BYTE_SEARCH_MAX // 2048 + 3  # noqa: SLF001 - just past the switch, odd width
    for y, x, bh, bw in [(0, 0, 1, 1), (h - 1, w - 1, 1, 1), (700, 5, 40, 3), (3, w - 20, h - 3, 20)]:
        bitmap = np.zeros((h, w), bool)
        bitmap[y:y + bh, x:x + bw] = rng.random((bh, bw)) < 0.7
        bitmap[y, x] = bitmap[y + bh - 1, x + bw - 1] = True
        assert bitmap.size > mk._BYTE_SEARCH_MAX  # noqa: SLF001
        assert mk.mask_bbox(bitmap) == _reference_bbox(bitmap) == (x, y, bw, bh)
        assert mk.mask_bbox(bitmap.view(np.uint8) * 255) == (x, y, bw, bh)
    assert mk.mask_bbox(np.zeros((h, w), bool)) is None


def test_placed_iou_equals_the_full_image_iou():
    rng = np.random.default_rng(1)
    for _ in range(50):
        a = (int(rng.integers(-3, 8)), int(rng.integers(-3, 8)), rng.random((rng.integers(1, 6), rng.integers(1, 6))) > 0.3)
        b = (int(rng.integers(-3, 8)), int(rng.integers(-3, 8)), rng.random((rng.integers(1, 6), rng.integers(1, 6))) > 0.3)
        # on a canvas that holds both whole (placed_iou does not clip to any image)
        fa = mk.paste(a[0] + 5, a[1] + 5, a[2], 20, 20)
        fb = mk.paste(b[0] + 5, b[1] + 5, b[2], 20, 20)
        assert mk.placed_iou(a, b) == pytest.approx(mk.bitmap_iou(fa, fb))
    assert mk.placed_iou((0, 0, np.ones((2, 2), bool)), (5, 5, np.ones((2, 2), bool))) == 0.0
    assert mk.placed_iou((0, 0, np.ones((2, 2), bool)), (1, 0, np.ones((2, 2), bool))) == pytest.approx(1 / 3)
    assert mk.bitmap_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 0.0


def test_place_masks_places_each_label_as_detection_placed_does():
    rng = np.random.default_rng(2)
    heights, widths = np.array([20, 30, 25]), np.array([40, 17, 33])
    boxes, box_masks, dets = [], [], []
    for i in range(3):
        h, w = int(heights[i]), int(widths[i])
        box = [rng.random() * 0.8 - 0.1, rng.random() * 0.8 - 0.1, rng.random() * 0.5, rng.random() * 0.5]
        mask = None if i == 1 else rng.random((5, 7)) > 0.5
        boxes.append(box)
        box_masks.append(mask)
        dets.append(mk.detection_placed(SimpleNamespace(bounding_box=box, mask=mask), h, w))
    placed = mk.place_masks(np.array(boxes), box_masks, heights, widths)
    for (x, y, m), (dx, dy, dm) in zip(placed, dets):
        assert (x, y) == (dx, dy) and np.array_equal(m, dm) and m.dtype == bool
    assert placed[1][2].all()  # a mask-less box fills its box


def test_a_mask_less_box_fills_its_rounded_box():
    det = SimpleNamespace(bounding_box=[0.25, 0.5, 0.5, 0.25], mask=None)
    bitmap = mk.detection_to_bitmap(det, 8, 8)
    assert mk.mask_bbox(bitmap) == (2, 4, 4, 2) and bitmap.sum() == 8


def test_pixel_window_rounds_outwards_widens_and_clips():
    assert mk.pixel_window(2.2, 3.7, 5.1, 6.0, 10, 10) == (2, 3, 6, 6)
    assert mk.pixel_window(2.2, 3.7, 5.1, 6.0, 10, 10, margin=3) == (0, 0, 9, 9)
    assert mk.pixel_window(-4.5, 8.5, 20.0, 30.0, 10, 12) == (0, 8, 12, 10)
    xs, ys, xe, ye = mk.pixel_window(12.0, 1.0, 15.0, 2.0, 10, 10)  # right of the image: empty
    assert xe <= xs and all(isinstance(v, int) for v in (xs, ys, xe, ye))
    assert mk.pixel_window(np.float32(1.5), 0, np.float64(2.5), 1, 4, 4) == (1, 0, 3, 1)


def test_union_box_holds_every_box():
    assert mk.union_box((2, 3, 4, 5), (1, 6, 2, 8)) == (1, 3, 5, 11)
    assert mk.union_box((2, 3, 4, 5), None) == (2, 3, 4, 5)
    assert mk.union_box() is None and mk.union_box(None) is None


def test_geometry_ious_is_the_full_image_iou_matrix():
    rng = np.random.default_rng(3)
    a = [rng.random((20, 30)) > 0.5 for _ in range(3)]
    b = [rng.random((20, 30)) > 0.4 for _ in range(2)]
    ious = mk.geometry_ious([mk.encode_rle(m) for m in a], [mk.encode_rle(m) for m in b])
    assert ious.shape == (3, 2)
    assert np.allclose(ious, [[mk.bitmap_iou(x, y) for y in b] for x in a])
    crowd = mk.geometry_ious([mk.encode_rle(a[0])], [mk.encode_rle(b[0])], [1])  # over the detection's area
    assert crowd[0, 0] == pytest.approx(np.count_nonzero(a[0] & b[0]) / np.count_nonzero(a[0]))
    assert mk.geometry_ious([], [mk.encode_rle(b[0])]).shape == (0, 1)


def test_a_mask_less_box_far_larger_than_its_image_is_refused_not_filled():
    import fiftyone as fo

    det = fo.Detection(label="x", bounding_box=[0, 0, 0, 1e300])  # hypothesis found it: a fill of 1e300 rows
    with pytest.raises(mk.MaskError, match="larger than its"):
        mk.detection_to_bitmap(det, 4, 4)
    assert mk.detection_to_bitmap(fo.Detection(label="x", bounding_box=[-1, -1, 3, 3]), 4, 4).all()  # over the edges: fine
