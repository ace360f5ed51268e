"""Edit operations as plain data: what the user asked for.

An op (``DeleteLabels``, ``Relabel``, ``SetMask``, ``Promote``...) names the labels or samples
and what to do with them. Its ``resolve`` method, called by the
:class:`~maskreview.core.editing.resolver.Resolver` against the sample documents as they are in
the database, emits the exact patches (:mod:`maskreview.core.editing.changes`);
:mod:`maskreview.core.editing.session` journals and writes them. No I/O here.

Non-destructive: the first edit of a label that existed before review copies it, as it was,
into ``<field>_original`` (a ``Detections`` field; the copy's ``original_of`` attribute is the
live label's id), so :class:`RestoreOriginal` can always bring back the pre-review label.
Labels created during review (added or promoted) carry ``review_added=True`` instead.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from maskreview.core import masks as mk
from maskreview.core.editing.changes import LabelPatch
from maskreview.core.editing.labels import as_detection
from maskreview.core.errors import BadInputError
from maskreview.core.store.codec import encode_mask
from maskreview.core.store.ids import as_oid, new_id
from maskreview.core.fields import (GT_FIELD, ORIGINAL_INDEX, ORIGINAL_OF, REVIEW_ADDED, SOURCE_FIELD, SOURCE_LABEL_ID,
                                    RUN_KEY, SOURCE_MODEL, SOURCE_RUN_KEY, SOURCE_SCORE, SOURCE_WEIGHTS, original_field)

if TYPE_CHECKING:
    from maskreview.core.editing.resolver import Resolver


@dataclass(frozen=True)
class LabelRef:
    sample_id: str
    field: str
    label_id: str


class Op:
    """Base class. ``samples()``/``fields()`` say what to read; ``resolve`` emits patches."""

    text = "edit"

    def samples(self) -> list[str]:
        return [ref.sample_id for ref in getattr(self, "labels", ())] or list(getattr(self, "sample_ids", ()))

    def fields(self) -> set[str]:
        return {ref.field for ref in getattr(self, "labels", ())}

    def resolve(self, r: Resolver) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _tag_mode(mode: str, tags, current: list) -> str:
    """``add`` or ``remove``; ``toggle`` removes where every item already has all the tags."""
    if mode != "toggle":
        return mode
    return "remove" if all(set(tags) <= set(have or []) for have in current) else "add"


@dataclass(frozen=True)
class SampleTags(Op):
    """Add, remove or toggle sample tags (toggle: remove where all have it, else add)."""

    sample_ids: tuple[str, ...]
    tags: tuple[str, ...]
    mode: str = "add"  # add | remove | toggle

    @property
    def text(self) -> str:
        return f"{self.mode} tag {', '.join(self.tags)} on {len(self.sample_ids)} sample(s)"

    def resolve(self, r: Resolver) -> None:
        mode = _tag_mode(self.mode, self.tags, [r.doc(s).get("tags") for s in self.sample_ids])
        for sid in self.sample_ids:
            (r.add_tags if mode == "add" else r.remove_tags)(sid, self.tags)


@dataclass(frozen=True)
class LabelTags(Op):
    labels: tuple[LabelRef, ...]
    tags: tuple[str, ...]
    mode: str = "add"  # add | remove | toggle

    @property
    def text(self) -> str:
        return f"{self.mode} label tag {', '.join(self.tags)} on {len(self.labels)} label(s)"

    def resolve(self, r: Resolver) -> None:
        mode = _tag_mode(self.mode, self.tags, [r.label(ref).get("tags") for ref in self.labels])
        for ref in self.labels:
            tags = list(r.label(ref).get("tags") or [])
            new = [t for t in tags if t not in self.tags] if mode == "remove" else tags + [t for t in self.tags if t not in tags]
            if new != tags:
                r.update_label(ref, {"tags": new}, snapshot=False)


@dataclass(frozen=True)
class DeleteLabels(Op):
    labels: tuple[LabelRef, ...]

    @property
    def text(self) -> str:
        return f"delete {len(self.labels)} label(s)"

    def resolve(self, r: Resolver) -> None:
        for ref in self.labels:
            r.delete_label(ref)


@dataclass(frozen=True)
class Relabel(Op):
    labels: tuple[LabelRef, ...]
    label: str

    @property
    def text(self) -> str:
        return f"relabel {len(self.labels)} label(s) as {self.label}"

    def resolve(self, r: Resolver) -> None:
        for ref in self.labels:
            if r.label(ref).get("label") != self.label:
                r.update_label(ref, {"label": self.label})


@dataclass(frozen=True)
class SetMask(Op):
    """Replace a label's mask by a full-image bitmap; the box follows the mask."""

    ref: LabelRef
    bitmap: np.ndarray = field(compare=False, repr=False)
    text = "edit mask"

    def samples(self) -> list[str]:
        return [self.ref.sample_id]

    def fields(self) -> set[str]:
        return {self.ref.field}

    def resolve(self, r: Resolver) -> None:
        height, width = r.image_size(self.ref.sample_id)
        bitmap = np.asarray(self.bitmap, dtype=bool)
        if bitmap.shape != (height, width):
            raise BadInputError(f"mask of shape {bitmap.shape} does not match the image ({height}, {width})")
        box = mk.mask_bbox(bitmap)
        if box is None:  # erased to nothing: keep the old box with an empty mask (as bitmap_to_detection)
            x, y, w, h = mk.detection_pixel_box(as_detection(r.label(self.ref)), height, width)
            mask = np.zeros((max(1, h), max(1, w)), bool)
        else:
            x, y, w, h = box
            mask = bitmap[y : y + h, x : x + w]
        r.update_label(self.ref, {"bounding_box": [x / width, y / height, w / width, h / height],
                                  "mask": encode_mask(mask)})


@dataclass(frozen=True)
class AddInstance(Op):
    """A new label from a full-image bitmap or from COCO polygons (image pixel coordinates)."""

    sample_id: str
    field: str
    label: str
    bitmap: np.ndarray | None = field(default=None, compare=False, repr=False)
    polygons: tuple[tuple[float, ...], ...] | None = None
    label_id: str = field(default_factory=new_id)
    text = "add instance"

    def samples(self) -> list[str]:
        return [self.sample_id]

    def fields(self) -> set[str]:
        return {self.field}

    def resolve(self, r: Resolver) -> None:
        height, width = r.image_size(self.sample_id)
        if self.bitmap is not None:
            bitmap = np.asarray(self.bitmap, dtype=bool)
            if bitmap.shape != (height, width):
                raise BadInputError(f"mask of shape {bitmap.shape} does not match the image ({height}, {width})")
        elif self.polygons:
            bitmap = mk.coco_to_bitmap([list(p) for p in self.polygons], height, width)
        else:
            raise BadInputError("a new instance needs a mask or a polygon")
        if not bitmap.any():
            raise BadInputError("the new instance has no pixels inside the image")
        det = mk.bitmap_to_detection(bitmap, self.label)
        doc = {"_id": as_oid(self.label_id), "_cls": "Detection", "attributes": {}, "tags": [],
               "label": self.label, "bounding_box": list(det.bounding_box), "mask": encode_mask(det.mask),
               REVIEW_ADDED: True}
        r.insert_label(self.sample_id, self.field, doc)


@dataclass(frozen=True)
class Promote(Op):
    """Copy a prediction into a ground-truth field, keeping where it came from."""

    ref: LabelRef
    target_field: str = GT_FIELD
    label_id: str = field(default_factory=new_id)
    text = "promote prediction"

    def samples(self) -> list[str]:
        return [self.ref.sample_id]

    def fields(self) -> set[str]:
        return {self.ref.field, self.target_field}

    def resolve(self, r: Resolver) -> None:
        pred = r.label(self.ref)
        run = (r.runs_info or {}).get(self.ref.field) or {}
        # only the label itself: evaluation results and review tags belong to the prediction
        doc = {k: copy.deepcopy(pred[k]) for k in ("_cls", "attributes", "label", "bounding_box", "mask", "iscrowd")
               if k in pred}
        doc.update({
            "_id": as_oid(self.label_id), "tags": [], REVIEW_ADDED: True,
            SOURCE_FIELD: self.ref.field, SOURCE_LABEL_ID: self.ref.label_id,
            SOURCE_SCORE: pred.get("confidence"), SOURCE_MODEL: run.get("model"),
            SOURCE_WEIGHTS: run.get("weights_sha256"), SOURCE_RUN_KEY: run.get(RUN_KEY),
        })
        r.insert_label(self.ref.sample_id, self.target_field, doc)


@dataclass(frozen=True)
class RestoreOriginal(Op):
    """Bring a label back to what it was before review (a label added in review goes away)."""

    ref: LabelRef
    text = "restore original"

    def samples(self) -> list[str]:
        return [self.ref.sample_id]

    def fields(self) -> set[str]:
        return {self.ref.field}

    def resolve(self, r: Resolver) -> None:
        snap = r.snapshot(self.ref)
        live = r.label(self.ref, missing_ok=True)
        if snap is None:
            if live is not None and live.get(REVIEW_ADDED):
                r.delete_label(self.ref)
            return
        restored = {k: copy.deepcopy(v) for k, v in snap.items() if k not in (ORIGINAL_OF, ORIGINAL_INDEX)}
        restored["_id"] = as_oid(self.ref.label_id)
        r.replace_label(self.ref, restored, index=snap.get(ORIGINAL_INDEX, -1))
        r.emit(self.ref.sample_id, LabelPatch(original_field(self.ref.field), str(snap["_id"]), snap, None))
