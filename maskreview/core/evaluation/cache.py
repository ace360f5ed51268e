"""What a re-evaluation reuses from the last one: per sample, as of the sample's version.

A reviewer evaluates, fixes a few labels, evaluates again. Between the two runs most samples
did not change, and every writer of a sample changes its version (FiftyOne's ``save`` and
``set_values`` set ``last_modified_at``; maskreview's writers also increment ``review_rev``,
``store.writer``). So for a sample whose version and image size are the ones of the last run,
its labels are the ones read then, and so are everything computed from them alone: each
mask's area, the GT's box, COCOeval's IoU matrix per class, each GT's occlusion, the
boundary IoU of a matched pair, and
the values stored under an eval key (written by this process at that version). Those are kept
here, in this process, per sample; a changed sample is read and computed again.

Not cached: labels whose mask is a ``mask_path`` image (the file can change without the sample),
and anything past :data:`MAX_LABELS` labels over every view's cache together (memory: an entry
keeps the decoded masks; the views evaluated longest ago let go of theirs first).
COCOeval itself runs over every sample each time (its accumulation needs all of them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from maskreview.core.store import view_key

MAX_LABELS = 300_000  # labels kept over all views (the box masks of 300,000 cell-sized labels: ~0.3 GB)
MAX_VIEWS = 2  # the last views evaluated (a whole dataset and a filtered view, say)


@dataclass(slots=True)
class Rows:
    """One field's labels in one sample, as read (one item per label)."""

    oids: list
    labels: list
    boxes: object  # [n, 4] float array, relative [x, y, w, h] (reading._rows; [] when none)
    masks: list  # decoded box masks, None where none
    scores: object  # [n] float array of confidences, nan where none
    crowd: list  # bool
    from_files: bool = False  # a mask came from a mask_path image: the sample is not kept


@dataclass(slots=True)
class Entry:
    """One sample as of ``version``: its labels per field, what was computed from them."""

    version: tuple  # (review_rev, last_modified_at, height, width)
    rows: tuple  # Rows per field read
    gt_area: list | None = None  # segm: each GT's area and box from its mask (COCO's definition)
    gt_bbox: list | None = None
    pred_area: list | None = None  # segm: each prediction's area (pixels of its pasted mask)
    occlusion: dict = field(default_factory=dict)  # iou type -> each GT's occlusion (it uses the GT's box)
    biou: dict = field(default_factory=dict)  # (GT label id, prediction label id) -> boundary IoU
    ious: dict = field(default_factory=dict)  # (iou type, class) -> COCOeval's IoU matrix in this sample
    stored: dict = field(default_factory=dict)  # eval key -> the values this sample holds under it
    # in a SampleCache: what is computed from its labels is kept on it for the next run; one no
    # cache keeps (past MAX_LABELS) carries only its version and stored values once its labels
    # are gathered (``reading.read_detections``): 100,000 samples' entries were ~1 GB
    kept: bool = False

    @property
    def n_labels(self) -> int:
        return sum(len(r.oids) for r in self.rows)


class SampleCache:
    """The entries of one view's samples (keyed by sample id), for one pair of fields."""

    def __init__(self):
        self._entries: dict[str, Entry] = {}
        self._labels = 0

    def get(self, sample_id: str, version: tuple) -> Entry | None:
        entry = self._entries.get(sample_id)
        return entry if entry is not None and entry.version == version else None

    def put(self, sample_id: str, entry: Entry) -> None:
        if any(r.from_files for r in entry.rows):
            return
        with _caches_lock:
            old = self._entries.pop(sample_id, None)
            if old is not None:
                self._labels -= old.n_labels
            if _room_for(self, entry.n_labels):
                self._entries[sample_id] = entry
                self._labels += entry.n_labels
                entry.kept = True

    def drop(self, sample_ids) -> None:
        with _caches_lock:
            for sid in sample_ids:
                old = self._entries.pop(sid, None)
                if old is not None:
                    self._labels -= old.n_labels

    def rewritten(self, sample_id: str, entry: Entry, version: tuple, eval_key: str, stored) -> None:
        """This process wrote ``stored`` under ``eval_key`` into the sample at ``entry.version``,
        which made it ``version``: its labels are the same, so the entry carries over."""
        with _caches_lock:
            if self._entries.get(sample_id) is entry:
                entry.version = version
                entry.stored[eval_key] = stored

    def __len__(self) -> int:
        return len(self._entries)


_caches: OrderedDict[tuple, SampleCache] = OrderedDict()
_caches_lock = threading.Lock()  # every cache's too: their labels share one budget


def _room_for(cache: SampleCache, n: int) -> bool:
    """Whether ``n`` more labels of ``cache`` fit in the budget of all views, letting go of the
    caches of the views evaluated longest ago first (a rerun of a 100,000-sample dataset kept a
    filtered view's 200,000 labels besides its own 300,000, BENCHMARKS.md)."""
    while cache._labels + n + sum(c._labels for c in _caches.values() if c is not cache) > MAX_LABELS:
        older = next((key for key, c in _caches.items() if c is not cache), None)
        if older is None:
            return False
        del _caches[older]
    return True


def for_view(view, fields) -> SampleCache:
    """The cache of this view (its dataset, its stages) and these fields."""
    key = (*view_key(view), tuple(fields))
    with _caches_lock:
        cache = _caches.pop(key, None) or SampleCache()
        _caches[key] = cache
        while len(_caches) > MAX_VIEWS:
            _caches.popitem(last=False)
        return cache


def clear() -> None:
    """Forget every entry (tests; a process that wants its memory back)."""
    with _caches_lock:
        _caches.clear()
