"""Detections read in bulk, straight from the database, as columns (no FiftyOne documents).

One column query (:func:`maskreview.core.store.reader.columns`) brings every sample's image size
and the detections of the asked fields; masks are decoded by the store's codec, and where each
box mask is pasted is computed for all detections at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskreview.core.fields import MODIFIED_FIELD, REV_FIELD
from maskreview.core.masks import place_masks
from maskreview.core.store import reader
from maskreview.core.store.codec import decode_mask, label_mask
from maskreview.core.store.writer import unchanged_since

@dataclass
class Dets:
    """The detections of one field over the samples read, one row each."""

    img: np.ndarray  # index of the sample
    ids: list[str]
    oids: list  # the same as ObjectIds
    labels: list[str]
    boxes: np.ndarray  # [n, 4] relative [x, y, w, h]
    masks: list  # box masks (bool arrays), None where a detection has none
    scores: np.ndarray  # confidence, nan where none
    crowd: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.ids)

    def pixel_boxes(self, heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """``[n, 4]`` boxes in pixels (``[x, y, w, h]``, not rounded)."""
        size = np.stack([widths[self.img], heights[self.img]], axis=1).astype(float)
        return self.boxes * np.tile(size, 2)

    def placed(self, heights: np.ndarray, widths: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        """``(x0, y0, box mask)`` per detection (``masks.place_masks``): its mask pasted at the
        rounded top-left of its box; a mask-less box fills its box."""
        return place_masks(self.boxes, self.masks, heights[self.img], widths[self.img])


def _flat(column) -> list:
    return [v for per_sample in column if per_sample for v in per_sample]


def _flat_or(column, counts, default) -> list:
    """Flatten a per-sample column whose lists may be missing (then ``default`` per detection)."""
    out = []
    for per_sample, n in zip(column, counts):
        if n:
            out.extend(per_sample if per_sample else [default] * n)
    return out


@dataclass
class Samples:
    ids: list[str]
    heights: np.ndarray
    widths: np.ndarray
    versions: list  # each sample's version as read, filter conditions (writes are conditional on it)


def read_detections(view, fields: list[str]) -> tuple[Samples, list[Dets]]:
    """The samples of a view (ids, image sizes) and a :class:`Dets` per field."""

    paths = ["_id", "metadata.height", "metadata.width", MODIFIED_FIELD]
    if REV_FIELD in view.get_field_schema():  # declared by the first writer of revisions
        paths.append(REV_FIELD)
    head = len(paths)
    attrs = ("_id", "label", "bounding_box", "mask", "confidence", "iscrowd", "mask_path")
    for f in fields:
        paths += [f"{f}.detections.{a}" for a in attrs]
    values = reader.columns(view, paths)
    ids = [str(v) for v in values[0]]
    revs = values[4] if head == 5 else [None] * len(ids)
    samples = Samples(ids, np.array([v or 0 for v in values[1]], np.int64),
                      np.array([v or 0 for v in values[2]], np.int64),
                      [unchanged_since({REV_FIELD: r, MODIFIED_FIELD: m}) for r, m in zip(revs, values[3])])
    out = []
    for j in range(len(fields)):
        dids, labels, boxes, masks, confs, crowds, mpaths = values[head + j * len(attrs): head + (j + 1) * len(attrs)]
        counts = [len(d or ()) for d in dids]
        img = np.repeat(np.arange(len(ids)), counts)
        raw_masks = _flat_or(masks, counts, None)
        mask_paths = _flat_or(mpaths, counts, None)
        decoded = [decode_mask(raw) if raw is not None else label_mask({"mask_path": path}) if path else None
                   for raw, path in zip(raw_masks, mask_paths)]
        scores = np.array([np.nan if c is None else c for c in _flat_or(confs, counts, None)], float)
        crowd = np.array([bool(c) for c in _flat_or(crowds, counts, False)], bool)
        oids = _flat(dids)
        out.append(Dets(img, [str(d) for d in oids], oids, _flat(labels),
                        np.array(_flat(boxes), float).reshape(-1, 4), decoded, scores, crowd))
    return samples, out
