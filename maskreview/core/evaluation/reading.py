"""Detections read in bulk, straight from the database, as columns (no FiftyOne documents).

One column query (:func:`maskreview.core.store.reader.columns`) brings every sample's image size
and the detections of the asked fields; masks are decoded by the store's codec, and where each
box mask is pasted is computed for all detections at once. With a :mod:`cache`, a first query
brings only each sample's version, and the labels are read for the samples changed since.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field

import numpy as np

from maskreview.core.evaluation.cache import Entry, Rows, SampleCache
from maskreview.core.fields import MODIFIED_FIELD, REV_FIELD
from maskreview.core.masks import box_corners, filled, place_masks, placed_boxes
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

    def placed(self, heights: np.ndarray, widths: np.ndarray):
        """``(x0, y0, box mask)`` per detection (``masks.place_masks``): its mask pasted at the
        rounded top-left of its box; a mask-less box fills its box. Masks kept packed
        (:class:`Packed`) give a :class:`PlacedMasks`, which unpacks each when asked."""
        if any(isinstance(m, Packed) for m in self.masks):
            return PlacedMasks(self.boxes, self.masks, heights[self.img], widths[self.img])
        return place_masks(self.boxes, self.masks, heights[self.img], widths[self.img])


PACK_LABELS = 200_000  # past this many labels read, box masks are kept packed (memory: 1,000,000 labels)


class Packed:
    """A box mask kept 1 bit a pixel (``np.packbits``: ~8x less memory than a bool array);
    :meth:`unpacked` gives the bool array back."""

    __slots__ = ("h", "w", "bits")

    def __init__(self, mask: np.ndarray):
        self.h, self.w = mask.shape
        self.bits = np.packbits(mask if mask.dtype == bool else mask.astype(bool), axis=None).tobytes()

    def unpacked(self) -> np.ndarray:
        n = self.h * self.w
        return np.unpackbits(np.frombuffer(self.bits, np.uint8), count=n).view(bool).reshape(self.h, self.w)


def _packed(masks: list) -> list:
    return [Packed(m) if isinstance(m, np.ndarray) and m.ndim == 2 else m for m in masks]


class PlacedMasks:
    """``(x0, y0, box mask)`` per label, as ``masks.place_masks`` makes them, each mask
    unpacked when asked (the results keep these for the whole run: 1,000,000 box masks as bool
    arrays are ~2.5 GB). A list for its users: indexing, slices (lists), ``len``, iteration,
    ``+``; pickled as the plain list."""

    def __init__(self, boxes: np.ndarray, masks: list, heights: np.ndarray, widths: np.ndarray):
        self._x0, self._y0, x1, y1 = box_corners(boxes, heights, widths)
        self._w, self._h = x1 - self._x0, y1 - self._y0
        self._masks = masks

    def __len__(self) -> int:
        return len(self._masks)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        m = self._masks[i]
        m = m.unpacked() if isinstance(m, Packed) else m
        return int(self._x0[i]), int(self._y0[i]), filled(m, int(self._w[i]), int(self._h[i]))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __add__(self, other) -> list:
        return list(self) + list(other)

    def __radd__(self, other) -> list:
        return list(other) + list(self)

    def __reduce__(self):
        return list, (list(self),)

    def boxes(self) -> np.ndarray:
        """:func:`masks.placed_boxes` of these, no mask unpacked."""
        shapes = [(m.h, m.w) if isinstance(m, Packed) else m.shape[:2] if m is not None else None for m in self._masks]
        w = np.array([s[1] if s else w for s, w in zip(shapes, self._w.tolist())], np.int64)
        h = np.array([s[0] if s else h for s, h in zip(shapes, self._h.tolist())], np.int64)
        return np.stack([self._x0, self._y0, np.maximum(w, 0), np.maximum(h, 0)], axis=1).reshape(-1, 4)


def boxes_of(placed) -> np.ndarray:
    """``[n, 4]`` int ``(x0, y0, w, h)`` of placed box masks (a list, or :class:`PlacedMasks`)."""
    return placed.boxes() if isinstance(placed, PlacedMasks) else placed_boxes(placed)


@dataclass
class Samples:
    ids: list[str]
    heights: np.ndarray
    widths: np.ndarray
    versions: list  # each sample's version as read, filter conditions (writes are conditional on it)
    entries: list = field(default_factory=list)  # cache.Entry per sample (the labels as read)
    fresh: np.ndarray | None = None  # bool per sample: read now (not from the cache)


_ATTRS = ("_id", "label", "bounding_box", "mask", "confidence", "iscrowd", "mask_path")


def _or(values, n: int, default) -> list:
    return values if values else [default] * n


def _rows(dids, labels, boxes, masks, confs, crowds, mpaths, pack: bool = False) -> Rows:
    """One sample's labels of one field from its raw column values (``pack``: masks :class:`Packed`).
    Class names are interned: one string a class, not one a label (~56 bytes a label)."""
    n = len(dids or ())
    if not n:
        return Rows([], [], [], [], [], [])
    masks = _or(masks, n, None)
    if mpaths and any(mpaths):  # a label may have its mask in an image file
        decoded = [decode_mask(raw) if raw is not None else label_mask({"mask_path": path}) if path else None
                   for raw, path in zip(masks, mpaths)]
        from_files = any(raw is None and path for raw, path in zip(masks, mpaths))
    else:  # (every label of the demo sets: no generator over pairs)
        decoded = [None if raw is None else decode_mask(raw) for raw in masks]
        from_files = False
    names = [sys.intern(x) if type(x) is str else x for x in labels] if labels else [None] * n
    # boxes and scores one array each a sample, not a list of 4 floats and a float a label
    # (~200 bytes and 6 objects a label: the cache keeps 300,000 labels, a read holds 1,000,000)
    scores = np.array([np.nan if c is None else c for c in confs], float) if confs else np.full(n, np.nan)
    return Rows(list(dids), names, np.array(boxes, float).reshape(n, 4), _packed(decoded) if pack else decoded,
                scores, [bool(c) for c in _or(crowds, n, False)], from_files)


def _version(rev, modified, height, width) -> tuple:
    return (rev, modified, height or 0, width or 0)


READ_BATCH = 2000  # samples per query when reading with progress (100,000 samples: 50 queries)


def _batched(view, paths: list[str], progress, ids: list | None = None, each=None) -> list[list]:
    """``reader.columns(view, paths)`` (of the samples ``ids`` only, when given), in queries of
    :data:`READ_BATCH` samples with progress and Cancel between them; values in the view's
    order (``ids``' order). ``each(columns)``: called with each batch's columns instead of
    returning them all (what is made of a batch is made before the next is read)."""
    if ids is None:
        if progress is None or view.count() <= READ_BATCH:  # one query, in the view's order: no id
            out = reader.columns(view, paths)  # query first, no $in of every id (~0.03 s CPU at 1,000)
            if progress is not None:
                progress.total = max(progress.total, progress.done + 1 + 3)
            got = each(out) if each is not None else out
            if progress is not None:
                progress.advance()
                progress.check()
            return got
        ids = reader.columns(view, ["_id"])[0]
    elif not ids:
        return [[] for _ in paths]
    if progress is not None:
        progress.total = max(progress.total, progress.done + -(-len(ids) // READ_BATCH) + 3)
    out = [[] for _ in paths]
    for start in range(0, len(ids), READ_BATCH):
        part = ids[start:start + READ_BATCH]
        got = reader.columns(view.select([str(i) for i in part]), paths)
        row = {str(sid): k for k, sid in enumerate(got[0])}
        order = [row.get(str(sid)) for sid in part]
        got = [[values[k] for k in order if k is not None] for values in got]
        if each is not None:
            each(got)
        else:
            for column, values in zip(out, got):
                column.extend(values)
        if progress is not None:
            progress.advance()
            progress.check()
    return out


def read_detections(view, fields: list[str], cache: SampleCache | None = None,
                    stored_key: str | None = None, progress=None) -> tuple[Samples, list[Dets]]:
    """The samples of a view (ids, image sizes) and a :class:`Dets` per field.

    With a ``cache`` (:mod:`cache`): one small query for every sample's id, size and version,
    and the labels read only for the samples whose version the cache does not hold.
    ``stored_key``: the values stored under this eval key are read with the labels, into each
    entry's ``stored`` (a rerun then writes only the samples whose values differ)."""

    paths = ["_id", "metadata.height", "metadata.width", MODIFIED_FIELD]
    if REV_FIELD in view.get_field_schema():  # declared by the first writer of revisions
        paths.append(REV_FIELD)
    label_paths = [f"{f}.detections.{a}" for f in fields for a in _ATTRS]
    if stored_key is not None:
        label_paths += [f"{stored_key}_{n}" for n in ("tp", "fp", "fn")]
        label_paths += [f"{f}.detections.{stored_key}{s}" for f in fields for s in STORED_SUFFIXES]
    entries, fresh = [], []
    made: list[Entry] = []  # the entries made from what is read now (not from the cache)
    n_labels, packed = [0], [0]  # labels read; entries of ``made`` packed (once past PACK_LABELS)

    def new_entries(got) -> list[Entry]:
        """A batch's entries (its masks decoded before the next batch is read), packed once
        more than :data:`PACK_LABELS` labels were read (and those read before are packed over
        the next batches; any left unpacked at the end work the same, :class:`PlacedMasks`)."""
        part, labels = got[:len(paths)], got[len(paths):]
        n_labels[0] += sum(len(dids or ()) for col in labels[:len(fields) * len(_ATTRS):len(_ATTRS)] for dids in col)
        pack = n_labels[0] > PACK_LABELS
        if pack:  # those read before: two batches' worth more with each batch (in one go: ~1.4 s
            upto = min(len(made), packed[0] + 2 * len(part[0]))  # at 200,000 labels, no progress)
            for e in made[packed[0]:upto]:
                for r in e.rows:
                    r.masks = _packed(r.masks)
            packed[0] = upto
        out = [_entry(_version(r, m, h, w), [col[i] for col in labels], len(fields), stored_key, pack)
               for i, (r, m, h, w) in enumerate(zip(part[4] if len(paths) == 5 else [None] * len(part[0]),
                                                    part[3], part[1], part[2]))]
        made.extend(out)
        return out

    if cache is None or not len(cache):
        head = [[] for _ in paths]

        def each(got):
            for column, values in zip(head, got[:len(paths)]):
                column.extend(values)
            entries.extend(new_entries(got))

        _batched(view, paths + label_paths, progress, each=each)
        versions = [e.version for e in entries]
        fresh = [True] * len(entries)
    else:
        head = reader.columns(view, paths)
        versions = [_version(r, m, h, w) for r, m, h, w in
                    zip(head[4] if len(paths) == 5 else [None] * len(head[0]), head[3], head[1], head[2])]
        ids = [str(v) for v in head[0]]
        entries = [cache.get(sid, v) for sid, v in zip(ids, versions)]
        missing = [i for i, e in enumerate(entries) if e is None]
        fresh = [e is None for e in entries]
        if missing:
            position = {ids[i]: i for i in missing}

            def each(got):  # (batch by batch, as above: not every mask decoded in one go)
                for sid, entry in zip(got[0], new_entries(got)):
                    i = position[str(sid)]
                    entries[i], versions[i] = entry, entry.version

            _batched(view, paths + label_paths, progress, [ids[i] for i in missing], each=each)
            for i in missing:
                if entries[i] is None:  # gone since the first query: evaluated as it was, without labels
                    entries[i] = Entry(versions[i], tuple(Rows([], [], [], [], [], []) for _ in fields))
    ids = [str(v) for v in head[0]]
    if cache is not None:
        for sid, entry, new in zip(ids, entries, fresh):
            if new:
                cache.put(sid, entry)
    samples = Samples(ids, np.array([v[2] for v in versions], np.int64), np.array([v[3] for v in versions], np.int64),
                      [unchanged_since({REV_FIELD: v[0], MODIFIED_FIELD: v[1]}) for v in versions], entries,
                      np.array(fresh, bool))
    if progress is None or len(entries) <= DETS_PIECE:
        out = [_dets(entries, j) for j in range(len(fields))]
    else:
        pieces = range(0, len(entries), DETS_PIECE)  # (1,000,000 labels: seconds in one go)
        progress.total = max(progress.total, progress.done + len(fields) * len(pieces) + 3)
        out = []
        for j in range(len(fields)):
            parts = []
            for start in pieces:
                parts.append(_dets(entries[start:start + DETS_PIECE], j, start))
                progress.advance()
                progress.check()
            out.append(_joined(parts))
    for e in entries:  # gathered: an entry no cache keeps needs its labels no more (cache.Entry.kept)
        if not e.kept:
            e.rows = ()
    return samples, out


DETS_PIECE = 10_000  # samples whose detections are gathered between two progress updates


def _joined(parts: list[Dets]) -> Dets:
    chain = itertools.chain.from_iterable
    return Dets(np.concatenate([p.img for p in parts]), list(chain(p.ids for p in parts)),
                list(chain(p.oids for p in parts)), list(chain(p.labels for p in parts)),
                np.concatenate([p.boxes for p in parts]).reshape(-1, 4), list(chain(p.masks for p in parts)),
                np.concatenate([p.scores for p in parts]), np.concatenate([p.crowd for p in parts]))


STORED_SUFFIXES = ("", "_id", "_iou", "_biou")  # what runs.py stores per label, in its order


def _entry(version: tuple, values: list, n_fields: int, stored_key: str | None, pack: bool = False) -> Entry:
    """A sample's entry from its raw values of ``label_paths`` (read_detections)."""
    a = len(_ATTRS)
    rows = tuple(_rows(*values[j * a:(j + 1) * a], pack=pack) for j in range(n_fields))
    entry = Entry(version, rows)
    if stored_key is not None:  # (tp, fp, fn, then per field and suffix a tuple over its labels)
        rest = values[n_fields * a:]
        per_label = []
        for j, r in enumerate(rows):
            for s in range(len(STORED_SUFFIXES)):
                got = _or(rest[3 + j * len(STORED_SUFFIXES) + s], len(r.oids), None)
                if s == 0:  # the outcomes: four strings, not one a label
                    got = [sys.intern(x) if type(x) is str else x for x in got]
                per_label.append(tuple(got))
        entry.stored[stored_key] = (*rest[:3], *per_label)
    return entry


def _dets(entries: list[Entry], j: int, first: int = 0) -> Dets:
    """Field ``j``'s detections of ``entries`` (the samples from index ``first`` on)."""
    rows = [e.rows[j] for e in entries]
    counts = [len(r.oids) for r in rows]
    chain = itertools.chain.from_iterable
    oids = list(chain(r.oids for r in rows))
    boxes = np.concatenate([np.asarray(r.boxes, float).reshape(-1, 4) for r in rows]) if rows else np.zeros((0, 4))
    scores = np.concatenate([np.asarray(r.scores, float).reshape(-1) for r in rows]) if rows else np.zeros(0)
    return Dets(np.repeat(np.arange(first, first + len(rows)), counts), [str(d) for d in oids], oids, list(chain(r.labels for r in rows)),
                boxes, list(chain(r.masks for r in rows)), scores, np.array(list(chain(r.crowd for r in rows)), bool))
