"""Detections read in bulk, straight from the database, as columns (no FiftyOne documents).

One ``values(..., _raw=True)`` query brings every sample's image size and the detections of the
asked fields; masks are decoded from FiftyOne's zlib-compressed ``.npy`` bytes directly, and
where each box mask is pasted is computed for all detections at once.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass

import numpy as np

_NPY_HEADER = re.compile(rb"'descr':\s*'([^']+)',\s*'fortran_order':\s*(True|False),\s*'shape':\s*\(([^)]*)\)")
_HEADERS: dict[bytes, tuple | None] = {}  # .npy header -> (dtype, shape, order); masks repeat shapes


def _parse_header(head: bytes) -> tuple | None:
    m = _NPY_HEADER.search(head)
    if not m:
        return None
    shape = tuple(int(v) for v in m.group(3).split(b",") if v.strip())
    return np.dtype(m.group(1).decode()), shape, "F" if m.group(2) == b"True" else "C"


def decode_mask(raw: bytes) -> np.ndarray:
    """A mask as FiftyOne stores it (zlib-compressed .npy bytes), without ``np.load``'s overhead."""
    data = zlib.decompress(raw)
    if data[6:8] == b"\x01\x00":
        end = 10 + int.from_bytes(data[8:10], "little")
        head = data[10:end]
        if head in _HEADERS:
            parsed = _HEADERS[head]
        else:
            parsed = _parse_header(head)
            if len(_HEADERS) < 100_000:
                _HEADERS[head] = parsed
        if parsed is not None:
            dtype, shape, order = parsed
            return np.frombuffer(data, dtype=dtype, offset=end).reshape(shape, order=order)
    with io.BytesIO(data) as f:
        return np.load(f, allow_pickle=False)


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
        """``(x0, y0, box mask)`` per detection: its mask pasted at the rounded top-left of its
        box (``masks.detection_pixel_box``); a mask-less box fills its box."""
        w, h, b = widths[self.img], heights[self.img], self.boxes
        x0, y0 = np.floor(b[:, 0] * w + 0.5).astype(np.int64), np.floor(b[:, 1] * h + 0.5).astype(np.int64)
        x1 = np.floor((b[:, 0] + b[:, 2]) * w + 0.5).astype(np.int64)
        y1 = np.floor((b[:, 1] + b[:, 3]) * h + 0.5).astype(np.int64)
        out = []
        for x, y, xe, ye, m in zip(x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist(), self.masks):
            if m is None:
                m = np.ones((max(0, ye - y), max(0, xe - x)), bool)
            elif m.dtype != bool:
                m = np.asarray(m, dtype=bool)
            out.append((x, y, m))
        return out


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
    from maskreview.core.editing.session import REV_FIELD, unchanged_since

    paths = ["_id", "metadata.height", "metadata.width", "last_modified_at"]
    if REV_FIELD in view._dataset.get_field_schema():  # declared by the first writer of revisions
        paths.append(REV_FIELD)
    head = len(paths)
    attrs = ("_id", "label", "bounding_box", "mask", "confidence", "iscrowd", "mask_path")
    for f in fields:
        paths += [f"{f}.detections.{a}" for a in attrs]
    values = view.values(paths, _raw=True)
    ids = [str(v) for v in values[0]]
    revs = values[4] if head == 5 else [None] * len(ids)
    samples = Samples(ids, np.array([v or 0 for v in values[1]], np.int64),
                      np.array([v or 0 for v in values[2]], np.int64),
                      [unchanged_since({REV_FIELD: r, "last_modified_at": m}) for r, m in zip(revs, values[3])])
    out = []
    for j in range(len(fields)):
        dids, labels, boxes, masks, confs, crowds, mpaths = values[head + j * len(attrs): head + (j + 1) * len(attrs)]
        counts = [len(d or ()) for d in dids]
        img = np.repeat(np.arange(len(ids)), counts)
        raw_masks = _flat_or(masks, counts, None)
        mask_paths = _flat_or(mpaths, counts, None)
        decoded = []
        for raw, path in zip(raw_masks, mask_paths):
            if raw is not None:
                decoded.append(decode_mask(raw))
            elif path:
                from maskreview.core.store import fiftyone

                decoded.append(fiftyone().Detection(mask_path=path).get_mask())
            else:
                decoded.append(None)
        scores = np.array([np.nan if c is None else c for c in _flat_or(confs, counts, None)], float)
        crowd = np.array([bool(c) for c in _flat_or(crowds, counts, False)], bool)
        oids = _flat(dids)
        out.append(Dets(img, [str(d) for d in oids], oids, _flat(labels),
                        np.array(_flat(boxes), float).reshape(-1, 4), decoded, scores, crowd))
    return samples, out
