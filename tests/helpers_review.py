"""Crafted review scenes: one known label error of each kind among correct labels (review queue tests)."""

from __future__ import annotations

import numpy as np

SIZE = 160


def disk(cx: int, cy: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def square(x: int, y: int, s: int) -> np.ndarray:
    out = np.zeros((SIZE, SIZE), bool)
    out[y:y + s, x:x + s] = True
    return out


def erode(m: np.ndarray, k: int = 1) -> np.ndarray:
    import cv2

    return cv2.erode(m.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)).astype(bool)


# (name, ground truth [(class, mask)], predictions [(class, mask, score)]) per image
def scenes():
    ok_a, ok_b = disk(40, 40, 18), square(90, 90, 40)
    boundary_gt = square(20, 95, 44)  # labelled as a square...
    boundary_pred = disk(42, 117, 22)  # ...the model sees a disk in the same box: same box, other outline
    swap = disk(110, 40, 20)
    missing = square(60, 20, 24)
    spurious = disk(130, 130, 12)
    ok_c = square(20, 20, 30)
    return [
        ("good-and-boundary", [("circle", ok_a), ("square", ok_b), ("square", boundary_gt)],
         [("circle", erode(ok_a), 0.97), ("square", erode(ok_b), 0.96), ("square", boundary_pred, 0.95)]),
        ("swap-and-missing", [("square", swap), ("square", ok_c)],
         [("circle", swap, 0.93), ("square", erode(ok_c), 0.98), ("circle", missing, 0.94)]),
        ("spurious", [("circle", spurious)], []),
    ]


def make_dataset(fo, tmp_path, name: str = "review-crafted"):
    """A dataset of the crafted scenes (PNG files, metadata, ``ground_truth`` and ``predictions``)."""
    import cv2

    from maskreview.core import masks as mk

    dataset = fo.Dataset(name)
    dataset.default_classes = ["circle", "square"]
    samples = []
    for key, gts, preds in scenes():
        image = np.full((SIZE, SIZE, 3), 60, np.uint8)
        for _, m in gts:
            image[m] = (200, 180, 40)
        path = tmp_path / f"{key}.png"
        cv2.imwrite(str(path), image[:, :, ::-1])
        sample = fo.Sample(filepath=str(path), metadata=fo.ImageMetadata(width=SIZE, height=SIZE))
        sample["ground_truth"] = fo.Detections(detections=[mk.bitmap_to_detection(m, c) for c, m in gts])
        sample["predictions"] = fo.Detections(
            detections=[mk.bitmap_to_detection(m, c, confidence=s) for c, m, s in preds])
        samples.append(sample)
    dataset.add_samples(samples)
    return dataset
