"""Resolving ops against the sample documents: the :class:`Resolver` turns an op into a :class:`Change`.

The documents are raw sample documents read by the session (:mod:`maskreview.core.editing.session`);
the resolver updates them as it goes, so several ops in one batch see each other's results. No
I/O: an image size missing from a sample's metadata comes from the ``image_size`` callable the
session passes in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from maskreview.core.editing.changes import Change, LabelPatch, SamplePatch
from maskreview.core.editing.labels import apply_label_patch
from maskreview.core.errors import BadInputError
from maskreview.core.fields import ORIGINAL_INDEX, ORIGINAL_OF, REVIEW_ADDED, original_field
from maskreview.core.store.ids import as_oid, new_oid

if TYPE_CHECKING:
    from maskreview.core.editing.ops import LabelRef, Op


class Resolver:
    """Resolves ops against raw sample documents, which it updates as it goes."""

    def __init__(self, docs: dict[str, dict], runs_info: dict | None = None,
                 image_size: Callable[[dict], tuple[int, int]] | None = None):
        """``image_size(doc)``: ``(height, width)`` of a sample whose metadata lacks it (the
        session reads the image header); without it such a sample's masks cannot be edited."""
        self.docs = docs
        self.runs_info = runs_info
        self._image_size = image_size
        self.patches: dict[str, SamplePatch] = {}

    def resolve(self, op: Op) -> Change:
        self.patches = {}
        op.resolve(self)
        return Change(op.text, [p for p in self.patches.values() if not p.empty])

    # -- reading ---------------------------------------------------------------------------
    def doc(self, sample_id: str) -> dict:
        try:
            return self.docs[sample_id]
        except KeyError:
            raise BadInputError(f"sample {sample_id} is not in the dataset (deleted?)") from None

    def labels(self, sample_id: str, field_name: str) -> list[dict]:
        container = self.doc(sample_id).get(field_name)
        return (container or {}).get("detections") or []

    def label(self, ref: LabelRef, missing_ok: bool = False) -> dict | None:
        return self._find(ref, missing_ok)[1]

    def _find(self, ref: LabelRef, missing_ok: bool = False) -> tuple[int, dict] | tuple[None, None]:
        """The label's position in its field and its document."""
        oid = as_oid(ref.label_id)
        for i, det in enumerate(self.labels(ref.sample_id, ref.field)):
            if det.get("_id") == oid:
                return i, det
        if missing_ok:
            return None, None
        raise BadInputError(f"label {ref.label_id} is not in {ref.field} of sample {ref.sample_id} (deleted?)")

    def snapshot(self, ref: LabelRef) -> dict | None:
        for det in self.labels(ref.sample_id, original_field(ref.field)):
            if det.get(ORIGINAL_OF) == ref.label_id:
                return det
        return None

    def image_size(self, sample_id: str) -> tuple[int, int]:
        doc = self.doc(sample_id)
        meta = doc.get("metadata") or {}
        if meta.get("width") and meta.get("height"):
            return int(meta["height"]), int(meta["width"])
        if self._image_size is None:
            raise BadInputError(f"cannot edit masks of sample {sample_id}: no image size in its metadata")
        return self._image_size(doc)

    # -- writing -------------------------------------------------------------------------
    def emit(self, sample_id: str, patch: LabelPatch) -> None:
        apply_label_patch(self.doc(sample_id), patch)
        self._patch(sample_id).labels.append(patch)

    def _snapshot_first(self, ref: LabelRef, found: tuple[int, dict] | None = None) -> None:
        index, live = found or self._find(ref)
        if live.get(REVIEW_ADDED) or self.snapshot(ref) is not None:
            return
        oid = new_oid()
        snap = {**live, "_id": oid, ORIGINAL_OF: ref.label_id, ORIGINAL_INDEX: index}
        patch = LabelPatch(original_field(ref.field), str(oid), None, snap)
        # what emit() does, for a label appended under a new id (nothing to look up)
        doc = self.doc(ref.sample_id)
        container = doc.get(patch.field)
        if container is None:
            container = doc[patch.field] = {"_cls": "Detections", "detections": []}
        container.setdefault("detections", []).append(dict(snap))
        self._patch(ref.sample_id).labels.append(patch)

    def update_label(self, ref: LabelRef, values: dict, snapshot: bool = True) -> None:
        pos, live = self._find(ref)
        if snapshot:
            self._snapshot_first(ref, (pos, live))
        before = {k: live.get(k) for k in values}
        patch = LabelPatch(ref.field, ref.label_id, before, dict(values), whole=False)
        # what emit() does, at the position just found (the snapshot went to another field)
        self.labels(ref.sample_id, ref.field)[pos] = {**live, **values}
        self._patch(ref.sample_id).labels.append(patch)

    def replace_label(self, ref: LabelRef, doc: dict, index: int = -1) -> None:
        live = self.label(ref, missing_ok=True)
        dets = self.labels(ref.sample_id, ref.field)
        pos = next((i for i, d in enumerate(dets) if d is live), index)
        self.emit(ref.sample_id, LabelPatch(ref.field, ref.label_id, dict(live) if live else None, doc, pos))

    def delete_label(self, ref: LabelRef) -> None:
        live = self.label(ref)
        self._snapshot_first(ref)
        index = next(i for i, d in enumerate(self.labels(ref.sample_id, ref.field)) if d is live)
        self.emit(ref.sample_id, LabelPatch(ref.field, ref.label_id, dict(live), None, index))

    def insert_label(self, sample_id: str, field_name: str, doc: dict) -> None:
        index = len(self.labels(sample_id, field_name))
        self.emit(sample_id, LabelPatch(field_name, str(doc["_id"]), None, doc, index))

    def _patch(self, sample_id: str) -> SamplePatch:
        """This op's patch of the sample (made on first use: not for every label it touches)."""
        patch = self.patches.get(sample_id)
        if patch is None:
            patch = self.patches[sample_id] = SamplePatch(sample_id)
        return patch

    def add_tags(self, sample_id: str, tags) -> None:
        doc = self.doc(sample_id)
        new = [t for t in tags if t not in (doc.get("tags") or [])]
        if new:
            self._patch(sample_id).tags_add.extend(new)
            doc["tags"] = list(doc.get("tags") or []) + new

    def remove_tags(self, sample_id: str, tags) -> None:
        doc = self.doc(sample_id)
        gone = [t for t in tags if t in (doc.get("tags") or [])]
        if gone:
            self._patch(sample_id).tags_remove.extend(gone)
            doc["tags"] = [t for t in doc["tags"] if t not in gone]
