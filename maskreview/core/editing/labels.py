"""The label-document toolkit: raw label documents as the database holds them.

Label documents are raw MongoDB documents (``_id`` an ObjectId, ``mask`` the bytes of FiftyOne's
serialized numpy array), which is what the database holds and what gets written. They are never
mutated in place, so copies can be shallow. Here: applying a :class:`LabelPatch` to a sample
document in memory (as the database update does), and a document's box and mask as
:mod:`maskreview.core.masks` reads a detection. Mask bytes are the store's codec's
(:mod:`maskreview.core.store.codec`).
"""

from __future__ import annotations

from types import SimpleNamespace

from maskreview.core.editing.changes import LabelPatch, SamplePatch
from maskreview.core.store.codec import label_mask
from maskreview.core.store.ids import as_oid


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


def label_arrays(doc: dict) -> set[str]:
    """The fields of a raw sample document that hold a label array (a ``Detections`` with its
    ``detections`` list; not missing, not null)."""
    return {name for name, value in doc.items() if isinstance(value, dict) and isinstance(value.get("detections"), list)}


def apply_sample_patch(doc: dict, patch: SamplePatch) -> None:
    """Apply a sample patch (its labels in order, then its tags) to a raw sample document in
    memory, as its database update does (``store.writer.update_expression``)."""
    for lp in patch.labels:
        apply_label_patch(doc, lp)
    if patch.tags_add or patch.tags_remove:
        tags = doc.get("tags") or []
        doc["tags"] = [t for t in tags if t not in patch.tags_remove] + [t for t in patch.tags_add if t not in tags]


def as_detection(doc: dict) -> SimpleNamespace:
    """The parts of a raw label document that :mod:`maskreview.core.masks` reads (the mask
    decoded by the store's codec, read-only)."""
    return SimpleNamespace(bounding_box=doc.get("bounding_box") or [0, 0, 0, 0], mask=label_mask(doc))
