"""Read-only queries the GUI runs while worker threads write, straight through pymongo.

pymongo is thread-safe; a FiftyOne ``Dataset`` object's mongoengine documents are not, so the
GUI's own reads (samples, counts, filters) use the dataset's collection directly and never
race with inference or edits writing through FiftyOne on a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass


class RawDetection:
    """One detection document as read from the database, with what the GUI reads of an
    ``fo.Detection`` (``id``, ``label``, ``confidence``, ``bounding_box``, ``mask``, fields).

    Building ``fo.Detections`` from documents goes through mongoengine validation and
    dereferencing, which costs more than the rest of showing a sample; this does not.
    """

    __slots__ = ("doc", "mask")

    def __init__(self, doc: dict):
        self.doc = doc
        mask = doc.get("mask")
        self.mask = _array(mask) if mask is not None else None

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


def _array(value):
    from fiftyone.core.utils import deserialize_numpy_array

    return deserialize_numpy_array(value)


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
    from bson import ObjectId

    from maskreview.core.store import fiftyone
    from maskreview.core.editing.session import VERSION_FIELDS, version_of

    fiftyone()  # configured before fiftyone.core.utils (mask decoding) is imported
    projection = {f: 1 for f in ("filepath", "metadata", "tags", *VERSION_FIELDS, *label_fields)}
    cursor = dataset._sample_collection.find({"_id": {"$in": [ObjectId(i) for i in sample_ids]}}, projection)
    out = {}
    for doc in cursor:
        meta = doc.get("metadata") or {}
        labels = {f: RawDetections([RawDetection(d) for d in doc[f].get("detections") or []])
                  if isinstance(doc.get(f), dict) else None for f in label_fields}
        sid = str(doc["_id"])
        out[sid] = RawSample(sid, doc["filepath"], meta.get("width"), meta.get("height"), list(doc.get("tags") or []),
                             labels, version_of(doc))
    return out


def ids_and_paths(dataset) -> tuple[list[str], list[str]]:
    """Every sample's id and filepath, in the dataset's order (one projected query)."""
    ids, paths = [], []
    for doc in dataset._sample_collection.find({}, {"filepath": 1}):
        ids.append(str(doc["_id"]))
        paths.append(doc["filepath"])
    return ids, paths


def _confident(min_confidence: float, prefix: str = "") -> dict:
    """Detections scoring at least ``min_confidence``, and those without a score (GT)."""
    return {"$or": [{f"{prefix}confidence": {"$gte": min_confidence}}, {f"{prefix}confidence": None}]}


def class_counts(dataset, field: str, min_confidence: float = 0.0) -> dict[str, int]:
    """Instances per class in a ``Detections`` field (those shown at this confidence threshold)."""
    pipeline = [{"$unwind": f"${field}.detections"}]
    if min_confidence > 0:
        pipeline.append({"$match": _confident(min_confidence, f"{field}.detections.")})
    pipeline.append({"$group": {"_id": f"${field}.detections.label", "n": {"$sum": 1}}})
    return {d["_id"]: d["n"] for d in dataset._sample_collection.aggregate(pipeline) if d["_id"] is not None}


def ids_with_label(dataset, field: str, label: str, min_confidence: float = 0.0) -> list[str]:
    """Samples with an instance of ``label`` in ``field`` (shown at this confidence threshold)."""
    query = {"label": label, **(_confident(min_confidence) if min_confidence > 0 else {})}
    return [str(i) for i in dataset._sample_collection.distinct("_id", {f"{field}.detections": {"$elemMatch": query}})]


def ids_with_tag(dataset, tag: str) -> list[str]:
    return [str(i) for i in dataset._sample_collection.distinct("_id", {"tags": tag})]


def all_tags(dataset) -> list[str]:
    return sorted(t for t in dataset._sample_collection.distinct("tags") if t is not None)
