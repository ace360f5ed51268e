"""Boundary errors of a matched pair: the pixels the prediction missed and the pixels it added.

``missed = gt & ~pred`` and ``added = pred & ~gt``: together exactly ``gt ^ pred``. Work is done
in the crop around both box masks (``(x0, y0, box mask)``, the ``core.masks`` placement), so
a pair costs what its boxes cover, not the image. The pair's mask IoU and boundary IoU come
with it (boundary IoU: ``core.evaluation.boundary``, the measure evaluation stores as
``<key>_biou``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from maskreview.core import masks as mk
from maskreview.core.evaluation.boundary import boundary_iou_masks


@dataclass
class PairDiff:
    x0: int  # where the crop lies in the image
    y0: int
    missed: np.ndarray  # bool, crop-sized: ground truth the prediction left out
    added: np.ndarray  # bool, crop-sized: prediction outside the ground truth
    iou: float
    biou: float

    @property
    def n_missed(self) -> int:
        return int(np.count_nonzero(self.missed))

    @property
    def n_added(self) -> int:
        return int(np.count_nonzero(self.added))

    def full(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """``(missed, added)`` as full-image bitmaps."""
        return mk.paste(self.x0, self.y0, self.missed, height, width), mk.paste(self.x0, self.y0, self.added, height, width)


def _paste(placed, x0: int, y0: int, shape) -> np.ndarray:
    """A placed box mask in the window of ``shape`` whose top-left is ``(x0, y0)``."""
    x, y, m = placed
    return mk.paste(x - x0, y - y0, m, shape[0], shape[1])


def pair_diff(gt, pred, height: int, width: int) -> PairDiff:
    """Missed and added pixels of ``gt`` and ``pred`` (each ``(x0, y0, box mask)``), clipped to
    the image."""

    box = mk.union_box(*[(x, y, m.shape[1], m.shape[0]) for x, y, m in (gt, pred) if m.size])
    if box is None:
        empty = np.zeros((0, 0), bool)
        return PairDiff(0, 0, empty, empty, 0.0, 0.0)
    x0, y0, x1, y1 = mk.pixel_window(box[0], box[1], box[0] + box[2], box[1] + box[3], height, width)
    shape = (max(0, y1 - y0), max(0, x1 - x0))
    g, p = _paste(gt, x0, y0, shape), _paste(pred, x0, y0, shape)
    return PairDiff(x0, y0, g & ~p, p & ~g, mk.bitmap_iou(g, p), boundary_iou_masks(gt, pred, height, width))
