"""COCOeval's IoUs from box masks (``encoding.block_ious``) equal pycocotools' ``maskUtils.iou``
on the full-image RLEs, entry for entry (``==``, not approximately), with the areas and boxes
``mask_utils.area``/``toBbox`` give: masks cut by the image's edges, boxes that touch at an edge
or a corner, masks smaller or larger than their box, empty (zero-area) masks, crowd regions,
more than ``max_det`` results of a class in an image, tied scores."""

from __future__ import annotations

import pickle

import numpy as np
from pycocotools import mask as mask_utils

from maskreview.core import masks as mk, plain_pickle
from maskreview.core.evaluation import encoding


def _reference(annotations, results, gt_items, dt_items, heights, widths, max_det):
    """pycocotools: full-image RLEs, COCOeval's computeIoU rule per (image, category)."""
    hw = lambda items, img: ([heights[i - 1] for i in img], [widths[i - 1] for i in img])
    g_rles = mk.paste_rles(gt_items, *hw(gt_items, [a["image_id"] for a in annotations]))
    d_rles = mk.paste_rles(dt_items, *hw(dt_items, [r["image_id"] for r in results]))
    out = {}
    keys = {(a["image_id"], a["category_id"]) for a in annotations} & {(r["image_id"], r["category_id"]) for r in results}
    for img, cat in keys:
        g = [j for j, a in enumerate(annotations) if (a["image_id"], a["category_id"]) == (img, cat)]
        d = [j for j, r in enumerate(results) if (r["image_id"], r["category_id"]) == (img, cat)]
        d = [d[i] for i in np.argsort([-results[j]["score"] for j in d], kind="mergesort")][:max_det]
        ious = mask_utils.iou([d_rles[j] for j in d], [g_rles[j] for j in g],
                              [int(annotations[j]["iscrowd"]) for j in g])
        out[img, cat] = np.asarray(ious, float).reshape(len(d), len(g))
    areas = lambda rles: np.asarray(mask_utils.area(rles), float).reshape(-1) if rles else np.zeros(0)
    return out, areas(g_rles), areas(d_rles), (mask_utils.toBbox(g_rles).tolist() if g_rles else [])


def _check(annotations, results, gt_items, dt_items, heights, widths, max_det=100):
    want, g_area, d_area, g_box = _reference(annotations, results, gt_items, dt_items, heights, widths, max_det)
    hw = lambda rows: (np.array([heights[r["image_id"] - 1] for r in rows]), np.array([widths[r["image_id"] - 1] for r in rows]))
    gc, dc = encoding.clip_masks(gt_items, *hw(annotations)), encoding.clip_masks(dt_items, *hw(results))
    ga, da = encoding.mask_areas(gc), encoding.mask_areas(dc)
    assert ga.tolist() == g_area.tolist() and da.tolist() == d_area.tolist()
    assert encoding.mask_boxes(gc) == g_box
    got = encoding.block_ious(annotations, results, gc, dc, ga, da, max_det=max_det)
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].shape == want[key].shape, key
        assert (got[key] == want[key]).all(), (key, got[key], want[key])
    # the lazily made RLEs are paste_rles' own
    lazy = encoding.LazyRles(gt_items, *hw(annotations))
    assert len(lazy) == len(gt_items) and list(lazy) == mk.paste_rles(gt_items, *hw(annotations))
    kept = plain_pickle.loads(pickle.dumps(encoding.LazyRles(gt_items, *hw(annotations))))  # review/stored.py
    assert type(kept) is list and kept == list(lazy)
    return want


def test_crafted_geometry():
    h, w = 40, 50
    full = lambda mh, mw: np.ones((mh, mw), bool)
    gt_items = [
        (-5, -3, full(10, 12)),  # cut by the top-left corner
        (44, 30, full(15, 15)),  # cut by the bottom-right corner
        (10, 10, full(8, 8)),  # a crowd region
        (20, 0, full(10, 10)),  # touches the next one's box at x = 30
        (30, 0, full(10, 10)),
        (0, 20, np.zeros((6, 6), bool)),  # an empty mask
        (60, 50, full(5, 5)),  # wholly outside the image: empty once pasted
        (5, 25, np.pad(full(3, 3), 2)),  # smaller than its box (tight box inside)
    ]
    annotations = [{"image_id": 1, "category_id": 1, "iscrowd": int(j == 2)} for j in range(len(gt_items))]
    dt_items = [
        (-2, -2, full(6, 6)), (40, 28, full(20, 20)), (12, 12, full(3, 3)), (8, 8, full(12, 12)),
        (25, 0, full(5, 10)), (29, 0, full(10, 1)),  # touching at x = 30 / overlapping one column
        (0, 20, np.zeros((6, 6), bool)),  # empty, on the empty GT
        (14, 14, np.zeros((4, 4), bool)),  # empty, inside the crowd region
        (5, 25, full(7, 7)), (39, 9, full(2, 2)),  # corner-touching (39,9)-(40,10) vs (30..40, 0..10)
    ]
    scores = [0.9, 0.8, 0.7, 0.7, 0.6, 0.5, 0.5, 0.4, 0.3, 0.3]
    results = [{"image_id": 1, "category_id": 1, "score": s} for s in scores]
    want = _check(annotations, results, gt_items, dt_items, [h], [w])
    assert (want[1, 1] > 0).sum() >= 6 and (want[1, 1] == 0).any()


def test_random_scenes_with_crowds_and_max_dets():
    rng = np.random.default_rng(5)
    heights, widths = [37, 64, 50], [53, 41, 70]
    annotations, results, gt_items, dt_items = [], [], [], []

    def item(img):
        mh, mw = int(rng.integers(0, 25)), int(rng.integers(0, 25))
        m = rng.random((mh, mw)) < rng.uniform(0, 1)
        x, y = int(rng.integers(-10, widths[img - 1])), int(rng.integers(-10, heights[img - 1]))
        return x, y, m

    for img in (1, 2, 3):
        for _ in range(25):
            annotations.append({"image_id": img, "category_id": int(rng.integers(1, 4)),
                                "iscrowd": int(rng.random() < 0.2)})
            gt_items.append(item(img))
        for _ in range(40):
            results.append({"image_id": img, "category_id": int(rng.integers(1, 5)),
                            "score": float(rng.choice([0.1, 0.5, 0.5, 0.9, rng.random()]))})
            dt_items.append(item(img))
    want = _check(annotations, results, gt_items, dt_items, heights, widths, max_det=7)
    assert sum(int((v > 0).sum()) for v in want.values()) > 20
