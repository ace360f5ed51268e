"""Synthetic predictions with a known error structure, for tests, benches and a model-less demo.

Each ground-truth instance is kept with its mask slightly eroded, dilated or shifted, or
dropped (a miss), or relabelled (a classification error); some are duplicated with a lower
score, and spurious blobs are added (background errors). Deterministic from the seed.
"""

from __future__ import annotations

import numpy as np

from maskreview.core import masks as mk
from maskreview.core.fields import GT_FIELD, PRED_FIELD
from maskreview.core.store import fiftyone


def _perturb_bitmap(rng: np.random.Generator, bitmap: np.ndarray) -> np.ndarray:
    import cv2

    kind = rng.integers(0, 4)
    if kind == 0:
        return bitmap
    if kind in (1, 2):
        k = int(rng.integers(1, 3))
        kernel = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
        op = cv2.erode if kind == 1 else cv2.dilate
        out = op(bitmap.astype(np.uint8), kernel).astype(bool)
        return out if out.any() else bitmap
    dy, dx = (int(v) for v in rng.integers(-4, 5, size=2))
    out = np.zeros_like(bitmap)
    h, w = bitmap.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = bitmap[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out if out.any() else bitmap


def perturbed_detections(rng: np.random.Generator, gt_dets, height: int, width: int, classes,
                         p_drop: float = 0.12, p_relabel: float = 0.08, p_duplicate: float = 0.06,
                         spurious_rate: float = 0.6):
    """``fo.Detections`` derived from one sample's ground truth (see the module docstring)."""
    import cv2


    fo = fiftyone()
    out = []
    for det in (gt_dets.detections if gt_dets is not None else []):
        if rng.random() < p_drop:
            continue
        bitmap = _perturb_bitmap(rng, mk.detection_to_bitmap(det, height, width))
        label = det.label
        if rng.random() < p_relabel:
            label = str(rng.choice([c for c in classes if c != det.label] or [det.label]))
        score = float(rng.uniform(0.3, 1.0))
        out.append(mk.bitmap_to_detection(bitmap, label, confidence=score))
        if rng.random() < p_duplicate:
            dup = _perturb_bitmap(rng, bitmap)
            out.append(mk.bitmap_to_detection(dup, label, confidence=score * float(rng.uniform(0.3, 0.9))))
    for _ in range(rng.poisson(spurious_rate)):
        blob = np.zeros((height, width), np.uint8)
        r = int(rng.integers(3, max(4, min(height, width) // 6)))
        cv2.circle(blob, (int(rng.integers(0, width)), int(rng.integers(0, height))), r, 1, -1)
        out.append(mk.bitmap_to_detection(blob.astype(bool), str(rng.choice(list(classes))),
                                          confidence=float(rng.uniform(0.05, 0.8))))
    return fo.Detections(detections=out)


def write_perturbed_predictions(view, gt_field: str = GT_FIELD, pred_field: str = PRED_FIELD,
                                seed: int = 0, **kwargs) -> None:
    """Fill ``pred_field`` of every sample in ``view`` with perturbed ground truth (bulk write)."""
    rng = np.random.default_rng(seed)
    ids, metas, gts = view.values(["id", "metadata", gt_field])
    classes = sorted({d.label for g in gts if g is not None for d in g.detections}) or ["object"]
    preds = [perturbed_detections(rng, g, int(m.height), int(m.width), classes, **kwargs)
             for g, m in zip(gts, metas)]
    view.set_values(pred_field, dict(zip(ids, preds)), key_field="id")
