"""Occlusion (``outcomes.gt_occlusion``) against its definition on full-image bitmaps: only pairs
whose boxes meet are counted (#17.2), which must give the same value for every instance,
including masks partly or wholly outside the image, boxes that touch without overlapping,
empty masks and images with one instance."""

import numpy as np

from maskreview.core.evaluation.outcomes import gt_occlusion
from maskreview.core.masks import paste, round_half_up


def _brute(img, heights, widths, masks, boxes):
    out = np.zeros(len(img))
    for a in range(len(img)):
        h, w = int(heights[img[a]]), int(widths[img[a]])
        bitmap = paste(*masks[a], h, w)
        area = bitmap.sum()
        for b in range(len(img)):
            if b == a or img[b] != img[a] or not area:
                continue
            x, y, bw, bh = round_half_up(np.asarray(boxes[b], float))
            x0, y0, x1, y1 = (int(np.clip(v, 0, lim)) for v, lim in ((x, w), (y, h), (x + bw, w), (y + bh, h)))
            out[a] = max(out[a], bitmap[y0:y1, x0:x1].sum() / area)
    return out


def test_occlusion_equals_its_definition_on_crafted_and_random_scenes():
    heights, widths = np.array([20, 30]), np.array([20, 40])
    full = np.ones((6, 6), bool)
    masks = [(0, 0, full), (6, 0, full),  # boxes touch edge to edge: no cover
             (-3, -3, full), (1, 1, full),  # the first partly outside the image
             (25, 25, full), (15, 15, np.zeros((4, 4), bool)),  # wholly outside; empty
             (2, 2, full)]  # alone in its image
    img = np.array([0, 0, 0, 0, 0, 0, 1])
    boxes = [[0, 0, 6, 6], [6, 0, 6, 6], [0, 0, 3, 3], [1, 1, 6, 6], [25, 25, 6, 6], [15, 15, 4, 4], [2, 2, 6, 6]]
    got = gt_occlusion(img, heights, widths, masks, boxes)
    np.testing.assert_array_equal(got, _brute(img, heights, widths, masks, boxes))
    assert got[4] == got[5] == got[6] == 0 and got[0] > 0 and got[3] > 0
    touching = gt_occlusion(img[:2], heights, widths, masks[:2], boxes[:2])
    np.testing.assert_array_equal(touching, [0, 0])

    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(60):
        n_img = int(rng.integers(1, 4))
        heights, widths = rng.integers(5, 50, n_img), rng.integers(5, 50, n_img)
        img = np.sort(rng.integers(0, n_img, int(rng.integers(0, 10))))
        masks, boxes = [], []
        for i in img.tolist():
            m = rng.random((int(rng.integers(0, 20)), int(rng.integers(0, 20)))) < 0.6
            masks.append((int(rng.integers(-8, widths[i])), int(rng.integers(-8, heights[i])), m))
            boxes.append([float(rng.integers(-5, widths[i])), float(rng.integers(-5, heights[i])),
                          float(rng.integers(0, 25)), float(rng.integers(0, 25))])
        got = gt_occlusion(img, heights, widths, masks, boxes)
        np.testing.assert_array_equal(got, _brute(img, heights, widths, masks, boxes))
        covered += int((got > 0).sum())
    assert covered > 20
