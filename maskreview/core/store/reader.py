"""The one raw reader of sample documents: projected, batched queries straight to MongoDB.

Everything that reads sample documents without building FiftyOne ``Sample`` objects reads here:
the GUI (:mod:`maskreview.gui.queries`, whose reads must not touch a ``Dataset``'s mongoengine
documents while worker threads write: pymongo is thread-safe, those documents are not), evaluation
(:mod:`maskreview.core.evaluation.reading`, column reads of a view) and the edit session (the
documents an edit is resolved against). Documents come back as MongoDB holds them (``_id`` an
ObjectId, label masks as bytes); :func:`maskreview.core.store.codec.label_mask` decodes a mask.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from maskreview.core.store.ids import as_oids

BATCH = 10_000  # ids per query: a $in list of ObjectIds stays far below MongoDB's 16 MB query limit


def collection(dataset):
    """The dataset's sample collection (pymongo). FiftyOne has no public accessor for it."""
    return dataset._sample_collection


def find(dataset, query: dict, paths: Iterable[str] | None = None) -> Iterator[dict]:
    """Sample documents matching ``query``, projected to ``paths`` (``_id`` always included)."""
    projection = None if paths is None else dict.fromkeys(paths, 1)
    yield from collection(dataset).find(query, projection)


def by_ids(dataset, sample_ids: Iterable, paths: Iterable[str] | None = None, query: dict | None = None) -> dict[str, dict]:
    """``{sample id: document}`` for the samples with these ids (that exist, and match ``query``),
    projected to ``paths``, in batches of :data:`BATCH` ids."""
    oids, paths = as_oids(dict.fromkeys(sample_ids)), None if paths is None else list(paths)
    out: dict[str, dict] = {}
    for start in range(0, len(oids), BATCH):
        for doc in find(dataset, {"_id": {"$in": oids[start:start + BATCH]}, **(query or {})}, paths):
            out[str(doc["_id"])] = doc
    return out


def one(dataset, sample_id, paths: Iterable[str] | None = None) -> dict | None:
    projection = None if paths is None else dict.fromkeys(paths, 1)
    return collection(dataset).find_one({"_id": as_oids([sample_id])[0]}, projection)


def exists(dataset, query: dict) -> bool:
    """Whether any sample matches ``query`` (stops at the first)."""
    return collection(dataset).find_one(query, {"_id": 1}) is not None


def count(dataset, query: dict, limit: int = 0) -> int:
    return collection(dataset).count_documents(query, limit=limit) if limit else collection(dataset).count_documents(query)


def columns(view, paths: list[str]) -> list[list]:
    """One list per path over the view's samples, values as the database holds them (one query;
    FiftyOne's ``values`` with its private raw mode: no conversion to Python types)."""
    return view.values(paths, _raw=True)


# --------------------------------------------------------------------------------------------
# the GUI's queries (statistics, filters), run on any thread
# --------------------------------------------------------------------------------------------

_GROUPED_BYTES = 12_000_000  # a $group result is one document: MongoDB's limit is 16 MB


def ids_and_paths(dataset) -> tuple[list[str], list[str]]:
    """Every sample's id and filepath, in the dataset's order.

    One aggregation that pushes them into two arrays of one document when they fit in it (100,000
    samples with paths of ~60 characters take ~9 MB), the ids as strings made by MongoDB: decoding
    one document of strings costs a twentieth of decoding 100,000 ObjectIds and ``str`` of each
    (bench_gui --samples 100000: 30 ms of client CPU, was 400); else one projected query."""
    coll = collection(dataset)
    n = coll.estimated_document_count()
    longest = max((len(d.get("filepath") or "") for d in coll.find({}, {"filepath": 1}).limit(200)), default=0)
    if n * (longest + 60) < _GROUPED_BYTES:  # 60: each entry's BSON keys and types, the id's 24 characters
        from pymongo.errors import OperationFailure

        try:
            out = list(coll.aggregate([{"$project": {"filepath": 1}},
                                       {"$group": {"_id": None, "ids": {"$push": {"$toString": "$_id"}},
                                                   "paths": {"$push": "$filepath"}}}]))
        except OperationFailure:  # longer paths further on than the first ones: over the limit after all
            out = None
        if out is not None:
            return (out[0]["ids"], out[0]["paths"]) if out else ([], [])
    ids, paths = [], []
    for doc in find(dataset, {}, ["filepath"]):
        ids.append(str(doc["_id"]))
        paths.append(doc["filepath"])
    return ids, paths


def tags_by_id(dataset, sample_ids=None) -> dict[str, list[str]]:
    """``{sample id: tags}`` of the samples that have a tag (of ``sample_ids`` only, when given):
    the ``tags`` index answers, so an untagged 100,000-sample dataset costs next to nothing."""
    query: dict = {"tags": {"$type": "string"}}
    if sample_ids is None:
        return {str(d["_id"]): d["tags"] for d in find(dataset, query, ["tags"])}
    return {sid: d["tags"] for sid, d in by_ids(dataset, sample_ids, ["tags"], query).items()}


def _confident(min_confidence: float, prefix: str = "") -> dict:
    """Detections scoring at least ``min_confidence``, and those without a score (GT)."""
    return {"$or": [{f"{prefix}confidence": {"$gte": min_confidence}}, {f"{prefix}confidence": None}]}


def class_counts(dataset, field: str, min_confidence: float = 0.0, sample_ids=None, label_ids=None) -> dict[str, int]:
    """Instances per class in a ``Detections`` field (those shown at this confidence threshold),
    in the samples ``sample_ids`` only and of the labels ``label_ids`` only (None: all)."""
    from bson import ObjectId

    pipeline = [{"$match": {"_id": {"$in": [ObjectId(i) for i in sample_ids]}}}] if sample_ids is not None else []
    pipeline.append({"$unwind": f"${field}.detections"})
    if label_ids is not None:  # a drill-down's labels are shown whatever their score
        pipeline.append({"$match": {f"{field}.detections._id": {"$in": [ObjectId(i) for i in label_ids]}}})
    elif min_confidence > 0:
        pipeline.append({"$match": _confident(min_confidence, f"{field}.detections.")})
    pipeline.append({"$group": {"_id": f"${field}.detections.label", "n": {"$sum": 1}}})
    return {d["_id"]: d["n"] for d in collection(dataset).aggregate(pipeline) if d["_id"] is not None}


def ids_with_label(dataset, field: str, label: str, min_confidence: float = 0.0) -> list[str]:
    """Samples with an instance of ``label`` in ``field`` (shown at this confidence threshold)."""
    query = {"label": label, **(_confident(min_confidence) if min_confidence > 0 else {})}
    return [str(i) for i in collection(dataset).distinct("_id", {f"{field}.detections": {"$elemMatch": query}})]


def ids_with_tag(dataset, tag: str) -> list[str]:
    return [str(i) for i in collection(dataset).distinct("_id", {"tags": tag})]


def all_tags(dataset) -> list[str]:
    return sorted(t for t in collection(dataset).distinct("tags") if t is not None)


# --------------------------------------------------------------------------------------------
# the browser's view: search, tag and stored-field sorts run in the database (#17.4)
# --------------------------------------------------------------------------------------------

def browse_query(search: str = "", tag: str | None = None) -> dict:
    """The query of the browser's filename search (case-insensitive, in the file's name, not its
    folders) and tag filter."""
    query: dict = {}
    text = search.strip()
    if text:  # the text, then only characters of the file name up to the end: it lies in the name
        query["filepath"] = {"$regex": re.escape(text) + r"[^/\\]*$", "$options": "i"}
    if tag:
        query["tags"] = tag
    return query


SEARCH_INDEX = [("filepath", 1), ("_id", 1)]  # the search's covering index: no sample document read


def ensure_index(dataset, keys) -> str:
    """An ascending index on ``keys`` (a path, or ``[(path, 1), ...]``), made once; its name.
    Cheap when it exists already."""
    return collection(dataset).create_index(keys)


# A substring search cannot use an index's order: MongoDB examines every key of SEARCH_INDEX (at
# 100,000 samples ~0.1-0.25 s of its CPU, the same for 100 hits as for 40,000; what the hits cost,
# their $toString and transfer, is a few ms). From SPLIT_SEARCH_FROM samples the scan runs as two
# queries at once, on the filepaths below and from a key near the index's middle (found once per
# dataset, on the worker that makes the indexes): the same keys examined once each, in about half
# the wall time on two cores. Any split key partitions the strings, so one gone stale after
# samples came or went still gives exactly the same hits, only less evenly.
SPLIT_SEARCH_FROM = 20_000
_SEARCH_SPLITS: dict[str, str] = {}  # sample collection's full name -> a filepath near SEARCH_INDEX's middle


@functools.cache
def _split_pool() -> ThreadPoolExecutor:
    """One thread for the second half of a split search (made on first use)."""
    return ThreadPoolExecutor(1, thread_name_prefix="search-half")


def prepare_search_split(dataset, min_samples: int = SPLIT_SEARCH_FROM) -> str | None:
    """Find (once) a filepath near the middle of the search index of a dataset of ``min_samples``
    or more; after it, :func:`browse_ids` scans the two halves at once (on SEARCH_INDEX, which
    must exist then; if it goes away the search falls back to one query)."""
    coll = collection(dataset)
    n = coll.estimated_document_count()
    if n < max(min_samples, 2):
        _SEARCH_SPLITS.pop(coll.full_name, None)
        return None
    # the median of 101 random samples' paths (a random cursor: a few documents read, not n / 2 keys)
    paths = sorted(d["filepath"] for d in coll.aggregate([{"$sample": {"size": 101}}, {"$project": {"filepath": 1}}])
                   if isinstance(d.get("filepath"), str))
    mid = paths[len(paths) // 2] if paths else None
    if mid is None:
        _SEARCH_SPLITS.pop(coll.full_name, None)
    else:
        _SEARCH_SPLITS[coll.full_name] = mid
    return mid


def _ids_fit_one_document(coll) -> bool:
    return coll.estimated_document_count() * 40 < _GROUPED_BYTES  # 40: an id string in a BSON array, with its index key


def _ids_of(coll, query: dict, hint=None, grouped: bool | None = None) -> list[str]:
    """The ids matching ``query``, pushed into one document as strings made by MongoDB when they
    surely fit (``grouped``; None: ask), else from one projected query."""
    options = {} if hint is None else {"hint": dict(hint)}  # aggregate's hint: a name or a document
    if _ids_fit_one_document(coll) if grouped is None else grouped:
        out = list(coll.aggregate([{"$match": query}, {"$project": {"_id": 1}},
                                   {"$group": {"_id": None, "ids": {"$push": {"$toString": "$_id"}}}}], **options))
        return out[0]["ids"] if out else []
    cursor = coll.find(query, {"_id": 1})
    return [str(d["_id"]) for d in (cursor if hint is None else cursor.hint(hint))]


def browse_ids(dataset, search: str = "", tag: str | None = None) -> list[str]:
    """The ids of the samples the browser's search and tag filter let through, in no particular
    order: one query that an index answers, on ``filepath`` and ``_id`` for the search
    (:data:`SEARCH_INDEX`, covering: MongoDB reads index keys only, no sample document) or on
    ``tags``; the search alone on a big dataset as two such queries at once, one per half of the
    index (:func:`prepare_search_split`)."""
    coll, query = collection(dataset), browse_query(search, tag)
    mid = _SEARCH_SPLITS.get(coll.full_name) if "filepath" in query and "tags" not in query else None
    if mid is None:
        return _ids_of(coll, query)
    from pymongo.errors import OperationFailure  # noqa: PLC0415 - needed on the split search only, as in ids_and_paths

    low, high = ({"filepath": {**query["filepath"], bound: mid}} for bound in ("$lt", "$gte"))
    grouped = _ids_fit_one_document(coll)  # asked once for both halves
    try:
        upper = _split_pool().submit(_ids_of, coll, high, SEARCH_INDEX, grouped)
        return _ids_of(coll, low, SEARCH_INDEX, grouped) + upper.result()
    except OperationFailure:  # the index is gone (dropped elsewhere): the one query, no split from now on
        _SEARCH_SPLITS.pop(coll.full_name, None)
        return _ids_of(coll, query)


def index_names(dataset) -> list[str]:
    return list(collection(dataset).index_information())
