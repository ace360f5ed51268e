"""The label-document toolkit: raw label documents as the database holds them.

Label documents are raw MongoDB documents (``_id`` an ObjectId, ``mask`` the bytes of FiftyOne's
serialized numpy array), which is what the database holds and what gets written. They are never
mutated in place, so copies can be shallow. Here: ids, applying a :class:`LabelPatch` to a sample
document in memory (as the database update does), and a document's box and mask as
:mod:`maskreview.core.masks` reads a detection. Mask bytes are the store's codec's
(:mod:`maskreview.core.store.codec`).
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import time
from types import SimpleNamespace

from bson import ObjectId

from maskreview.core.editing.changes import LabelPatch
from maskreview.core.store.codec import label_mask


def new_id() -> str:
    return str(new_oid())


_oid_counter = itertools.count(random.randrange(1 << 24))
_oid_process: tuple[int | None, bytes] = (None, b"")


def new_oid() -> ObjectId:
    """A fresh ObjectId laid out as ``ObjectId()`` makes them (seconds, 5 random bytes per
    process, a 3-byte counter), in a tenth of its time (BENCHMARKS.md, write-back; a bulk edit
    makes one per snapshot)."""
    global _oid_process
    pid = os.getpid()
    if _oid_process[0] != pid:  # a forked child must not repeat its parent's ids
        _oid_process = (pid, os.urandom(5))
    counter = next(_oid_counter) & 0xFFFFFF
    return ObjectId((int(time.time()) & 0xFFFFFFFF).to_bytes(4, "big") + _oid_process[1] + counter.to_bytes(3, "big"))


def as_oid(label_id) -> ObjectId:
    """A label or sample id as an ObjectId (an ObjectId is returned as it is)."""
    return label_id if isinstance(label_id, ObjectId) else _parse_oid(label_id)


@functools.lru_cache(maxsize=1 << 16)
def _parse_oid(label_id: str) -> ObjectId:
    """ObjectIds are immutable; resolving looks the same ids up many times."""
    return ObjectId(label_id)


def apply_label_patch(doc: dict, patch: LabelPatch) -> None:
    """Apply a label patch to a raw sample document in memory (mirrors the database update)."""
    container = doc.get(patch.field)
    if container is None:
        container = doc[patch.field] = {"_cls": "Detections", "detections": []}
    dets = container.setdefault("detections", [])
    oid = as_oid(patch.label_id)
    pos = next((i for i, d in enumerate(dets) if d.get("_id") == oid), None)
    if not patch.whole:
        if pos is not None:
            dets[pos] = {**dets[pos], **patch.after}
        return
    if pos is not None:
        dets.pop(pos)
    if patch.after is not None:
        after = dict(patch.after)
        if 0 <= patch.index < len(dets):
            dets.insert(patch.index, after)
        else:
            dets.append(after)


def as_detection(doc: dict) -> SimpleNamespace:
    """The parts of a raw label document that :mod:`maskreview.core.masks` reads (the mask
    decoded by the store's codec, read-only)."""
    return SimpleNamespace(bounding_box=doc.get("bounding_box") or [0, 0, 0, 0], mask=label_mask(doc))
