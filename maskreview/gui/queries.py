"""Read-only queries the GUI runs while worker threads write, through :mod:`maskreview.core.store.reader`.

pymongo is thread-safe; a FiftyOne ``Dataset`` object's mongoengine documents are not, so the
GUI's own reads (samples, counts, filters) go to the database through the store's raw reader and
never race with inference or edits writing through FiftyOne on a worker thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from maskreview.core.store.codec import label_mask
from maskreview.core.store.reader import (SEARCH_INDEX, all_tags, browse_ids, class_counts, ensure_index, ids_and_paths,  # noqa: F401
                                          ids_with_label, ids_with_tag, prepare_search_split, tags_by_id)


def prepare_browsing(dataset) -> None:
    """The indexes the browser's tag filter and search use (made once; cheap when they exist:
    run it on a worker, building them takes a while on a big dataset): ``tags``, and
    ``filepath`` + ``_id`` (``reader.SEARCH_INDEX``), which answers the search from index keys
    alone (FiftyOne's own ``filepath`` index would read each hit's document)."""
    ensure_index(dataset, "tags")
    ensure_index(dataset, SEARCH_INDEX)
    prepare_search_split(dataset)  # a big dataset's search scans the index's two halves at once


_MASKS: OrderedDict = OrderedDict()  # (label id, stored mask bytes) -> decoded read-only mask, newest last
_MASKS_LOCK = threading.Lock()  # thumbnail workers read samples too
_MASKS_HELD = [0]  # bytes of the decoded masks in _MASKS
MASK_CACHE_BYTES = 96 << 20


def cached_mask(doc: dict):
    """The label's decoded mask; the same label with the same stored bytes again (a sample read
    again after an edit elsewhere in it) gives the same read-only array without decoding: the
    canvas then tells an unchanged label by identity (``layers.same_pixels``)."""
    raw = doc.get("mask")
    if raw is None:
        return label_mask(doc)
    key = (doc.get("_id"), raw)
    with _MASKS_LOCK:
        mask = _MASKS.get(key)
        if mask is not None:
            _MASKS.move_to_end(key)
            return mask
    mask = label_mask(doc, writable=True)
    if mask is None:
        return None
    mask.flags.writeable = False  # shared between reads: nobody may change it in place
    with _MASKS_LOCK:
        if key not in _MASKS:
            _MASKS_HELD[0] += mask.nbytes
        _MASKS[key] = mask
        while _MASKS_HELD[0] > MASK_CACHE_BYTES and len(_MASKS) > 1:
            _MASKS_HELD[0] -= _MASKS.popitem(last=False)[1].nbytes
    return mask


class RawDetection:
    """One detection document as read from the database, with what the GUI reads of an
    ``fo.Detection`` (``id``, ``label``, ``confidence``, ``bounding_box``, ``mask``, fields).

    Building ``fo.Detections`` from documents goes through mongoengine validation and
    dereferencing, which costs more than the rest of showing a sample; this does not.
    """

    __slots__ = ("doc", "mask")

    def __init__(self, doc: dict):
        self.doc = doc
        self.mask = cached_mask(doc)

    id = property(lambda self: str(self.doc["_id"]))
    label = property(lambda self: self.doc.get("label"))
    confidence = property(lambda self: self.doc.get("confidence"))
    bounding_box = property(lambda self: self.doc.get("bounding_box"))

    def has_field(self, name: str) -> bool:
        return name in self.doc

    def get_field(self, name: str):
        return self.doc.get(name)


@dataclass
class RawDetections:
    detections: list[RawDetection]


@dataclass
class RawSample:
    id: str
    filepath: str
    width: int | None
    height: int | None
    tags: list[str]
    labels: dict  # field -> RawDetections | None
    version: object = None  # writeback.version_of the document as read, the base of edits to what is shown


def read_samples(dataset, sample_ids: list[str], label_fields: list[str]) -> dict[str, RawSample]:
    """Samples' paths, sizes, tags and label fields (:class:`RawDetections`), by id."""
    from maskreview.core.editing.session import VERSION_FIELDS, version_of
    from maskreview.core.store import reader

    paths = ("filepath", "metadata", "tags", *VERSION_FIELDS, *label_fields)
    out = {}
    for doc in reader.by_ids(dataset, sample_ids, paths).values():
        meta = doc.get("metadata") or {}
        labels = {f: RawDetections([RawDetection(d) for d in doc[f].get("detections") or []])
                  if isinstance(doc.get(f), dict) else None for f in label_fields}
        sid = str(doc["_id"])
        out[sid] = RawSample(sid, doc["filepath"], meta.get("width"), meta.get("height"), list(doc.get("tags") or []),
                             labels, version_of(doc))
    return out
