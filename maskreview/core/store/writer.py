"""The one writer of sample documents: bulk and conditional updates, revisions, field declarations.

Every write of sample labels that does not go through FiftyOne's own ``Sample.save`` goes through
here: the edit session (:class:`SampleWriter` with ``durable=True``, and :func:`patch_update` /
:func:`resolved_updates`, where an edit's patch becomes an update pipeline), a model run, its undo,
and stored evaluation results. Any write other than an edit session's is a new revision of the
sample (:func:`revised`), conditional on the version it read (:func:`unchanged_since`), so an
editor holding the previous version sees the change instead of overwriting it.

After a raw write, :func:`refresh_loaded` brings FiftyOne's in-memory ``Sample`` objects up to date.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
import json


from maskreview.core.errors import BadInputError
from maskreview.core.fields import MODIFIED_FIELD, REV_BY_FIELD, REV_FIELD
from maskreview.core.store import fiftyone, lost_database, reader
from maskreview.core.store.ids import as_oid

VERSION_FIELDS = (REV_FIELD, REV_BY_FIELD, MODIFIED_FIELD)  # the first two declared in the schema


def now_ms() -> datetime:
    """The time a write stamps into ``last_modified_at``: UTC without a zone, in whole
    milliseconds, as MongoDB keeps it (so a value read back compares equal to the one written)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# --------------------------------------------------------------------------------------------
# revisions
# --------------------------------------------------------------------------------------------

def declare_revision_fields(dataset) -> None:
    """Declare ``review_rev`` and ``review_rev_by`` in the schema (once; cheap when declared).
    Every writer of labels calls it before its first write, edit session or not."""

    schema = dataset.get_field_schema()
    fo = fiftyone()
    missing = {}
    for name, ftype in ((REV_FIELD, fo.IntField), (REV_BY_FIELD, fo.StringField)):
        if name not in schema:
            missing[name] = ftype(description="maskreview's edit revision (conflict detection)")
        elif type(schema[name]) is not ftype:
            raise BadInputError(f"dataset {dataset.name!r} has a field {name!r} of its own "
                                f"({type(schema[name]).__name__}), where maskreview counts edits; rename it first")
    if missing:  # one schema merge (one dataset reload: ~0.04 s), not one add_sample_field each
        declare_fields(dataset, missing)


def revised(update: dict, writer: str) -> dict:
    """``update`` (``{"$set": {...}}``), made a new revision of the sample: writers other than
    an edit session (a model run, its undo, stored evaluation results) use it, so an editor
    holding the previous version sees the change, even one stamped in the same millisecond.
    ``writer`` names the writer in ``review_rev_by`` (unique per run: a write read back with it
    is known to be its own)."""
    return {**update, "$set": {**update.get("$set", {}), REV_BY_FIELD: writer},
            "$inc": {**update.get("$inc", {}), REV_FIELD: 1}}


def unchanged_since(doc: dict) -> dict:
    """Filter conditions: the sample is still at the version of ``doc`` (read with
    :data:`VERSION_FIELDS`); no revision matches a sample without one."""
    return {REV_FIELD: doc.get(REV_FIELD), MODIFIED_FIELD: doc.get(MODIFIED_FIELD)}


def bump_revisions(dataset, query: dict, writer: str) -> None:
    """A new revision of every sample matching ``query``, after a write through FiftyOne's own
    API (which cannot carry :func:`revised`), e.g. deleting an evaluation's label attributes."""
    declare_revision_fields(dataset)
    reader.collection(dataset).update_many(query, revised({}, writer))


# --------------------------------------------------------------------------------------------
# bulk writes
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Update:
    """One update of the samples matching ``filter`` (``many``: all of them, else the first).
    ``update`` is an update document (``{"$set": ...}``) or an aggregation pipeline (a list)."""

    filter: dict
    update: dict | list
    many: bool = False
    array_filters: list | None = None  # for ``$[name]`` in an update document's paths


@dataclass(frozen=True, slots=True)
class Written:
    matched: int
    modified: int


def _requests(updates: Iterable[Update]) -> list:
    from pymongo import UpdateMany, UpdateOne

    return [(UpdateMany if u.many else UpdateOne)(u.filter, u.update, array_filters=u.array_filters) for u in updates]


# How long a write waits for a majority of a replica set (an election after losing the primary
# takes about 10 s; a write normally has its majority in milliseconds). Past it, the write counts
# as not acknowledged: the edit session keeps it queued and checks later whether it landed.
MAJORITY_WTIMEOUT_MS = 10_000


def _durable(collection):
    """``collection`` with a write concern that acknowledges only what survives a crash of
    mongod: in its journal on disk (``j``), and on a replica set in a majority of members
    (within :data:`MAJORITY_WTIMEOUT_MS`)."""
    from pymongo import WriteConcern

    replica_set = "setName" in collection.database.client.admin.command("hello")
    concern = WriteConcern(w="majority", j=True, wtimeout=MAJORITY_WTIMEOUT_MS) if replica_set else \
        WriteConcern(w=1, j=True)
    return collection.with_options(write_concern=concern)


def unconfirmed(exc: BaseException) -> bool:
    """Whether a write failed without an answer on whether it landed: the database unreachable
    (mongod gone, a replica set between primaries) or no majority within the write timeout."""
    from pymongo.errors import BulkWriteError, ConnectionFailure, WTimeoutError

    if isinstance(exc, (ConnectionFailure, WTimeoutError)) or lost_database(exc) is not None:
        return True
    details = getattr(exc, "details", None) or {}
    return isinstance(exc, BulkWriteError) and bool(details.get("writeConcernErrors")) and not details.get("writeErrors")


class SampleWriter:
    """Writes to one dataset's samples. ``durable``: acknowledged only once mongod has the write
    in its journal (and a majority has it, on a replica set), for edits the user was told are saved."""

    def __init__(self, dataset, durable: bool = False):
        coll = reader.collection(dataset)
        self._coll = _durable(coll) if durable else coll

    def write(self, updates: list[Update], ordered: bool = False) -> Written:
        """All ``updates`` in one round trip (``ordered``: in order, stopping at an error)."""
        if not updates:
            return Written(0, 0)
        result = self._coll.bulk_write(_requests(updates), ordered=ordered)
        return Written(result.matched_count, result.modified_count)

    def update_one(self, update: Update) -> int:
        """The number of samples ``update`` modified (0 or 1)."""
        return self._coll.update_one(update.filter, update.update, array_filters=update.array_filters).modified_count


def insert_documents(dataset, docs: list[dict]) -> int:
    """New sample documents exactly as given (ids, schema-conforming fields: the caller's job), in
    one unordered bulk insert: for building big datasets fast (bench/bench_gui.py's 100k). Returns
    how many went in."""
    return len(reader.collection(dataset).insert_many(docs, ordered=False).inserted_ids) if docs else 0


def write(dataset, updates: list[Update], ordered: bool = False) -> Written:
    """``updates`` in bulk, in batches FiftyOne sizes for the server (one per batch round trip)."""
    from fiftyone.core.odm.database import bulk_write

    results = bulk_write(_requests(updates), reader.collection(dataset), ordered=ordered) if updates else []
    return Written(sum(r.matched_count for r in results), sum(r.modified_count for r in results))


# --------------------------------------------------------------------------------------------
# the schema, FiftyOne's objects in memory, its stored runs
# --------------------------------------------------------------------------------------------

def declare_fields(dataset, schema: dict) -> None:
    """Declare sample and label fields (``{path: field instance}``, e.g.
    ``{"gt.detections.eval_iou": fo.FloatField()}``) in one schema merge: one reload, where
    ``add_sample_field`` per path reloads the dataset once per field."""
    existing = dataset.get_field_schema(flat=True)
    schema = {path: f for path, f in schema.items() if path not in existing}
    if schema:
        dataset._merge_sample_field_schema(schema)


def undeclare_fields(dataset, paths: Iterable[str]) -> None:
    """Take declared sample and label fields out of the schema only, their values left as they
    are: for fields no sample holds a value of (the caller unset them in the samples it wrote).
    FiftyOne's ``delete_sample_fields`` unsets each in every sample (a scan and a write of each,
    ``last_modified_at`` too: seconds at 100,000 samples), and its schema-only
    ``remove_dynamic_sample_fields`` takes label attributes only; this is that, for both."""
    existing = dataset.get_field_schema(flat=True)
    paths = [p for p in dict.fromkeys(paths) if p in existing]
    if not paths:
        return
    doc_cls = dataset._sample_doc_cls
    doc_cls._reload_fields()  # (as FiftyOne does first, for list fields)
    for path in paths:
        doc_cls._delete_field_schema(path)
    dataset._doc.app_config._delete_paths(paths)
    dataset._doc.save()


def refresh_loaded(dataset, sample_ids: Iterable[str], fields: Iterable[str] | None = None) -> None:
    """Bring FiftyOne's in-memory ``Sample`` objects of these samples (those loaded, if any) up
    to date with the database after a raw write: ``fields`` only, in one query (FiftyOne's own
    reload is a query per sample), or every field when None."""
    import fiftyone.core.sample as fos

    live = fos.Sample._instances.get(dataset._sample_collection_name) or {}
    ids = [i for i in set(map(str, sample_ids)) if live.get(i) is not None]
    if not ids:
        return
    if fields is None:
        fos.Sample._reload_docs(dataset._sample_collection_name, sample_ids=ids)
        return
    for sid, raw in reader.by_ids(dataset, ids, fields).items():
        sample = live.get(sid)
        if sample is None:
            continue
        raw.pop("_id", None)
        doc = sample._doc
        for name, value in raw.items():
            fld = doc._fields.get(name)
            doc._data[name] = fld.to_python(value) if fld is not None and value is not None else value


def save_run_results(method, view, run_key: str, fo_results, progress=None, made: list | None = None) -> None:
    """FiftyOne's ``save_run_results``, the JSON written by the C encoder: the results document
    holds plain lists, numbers and strings, which ``json.dumps`` writes as FiftyOne's
    ``json_util.dumps`` does (its ``default`` hook takes any BSON value; a NaN is written ``NaN``,
    which FiftyOne's ``json_util.loads`` reads back), without json_util's pure-Python walk over
    every value (about half of the store time, BENCHMARKS.md).

    ``progress`` (a ``core.progress.Progress``): its total grows by the slices of the big arrays,
    and it advances as each is written (at 1,000,000 labels the whole document took 3 s with no
    update, bench_eval_scale). ``made``: its JSON made before (:func:`small_results_json`)."""

    run_doc = method._get_run_doc(view, run_key)
    if run_doc.results:
        run_doc.results.delete()  # GridFS keeps the old file otherwise
    run_doc.results.new_file(content_type="application/json")
    on_slice = None
    if progress is not None:
        progress.total += sum(-(-len(a) // ARRAY_SLICE) for a in _big_arrays(fo_results).values())
        on_slice = progress.advance
    for piece in made if made is not None else results_json(fo_results, on_slice):
        run_doc.results.write(piece)
    run_doc.results.close()
    run_doc.results_meta = dict(fo_results.get_meta() or {})
    # not kept in FiftyOne's in-memory cache, which would hold them as long as the dataset (~0.2 GB
    # at 1,000,000 labels) though nothing here reads them back; an older copy there is now stale
    getattr(view._root_dataset, method._results_cache_field()).pop(run_key, None)
    run_doc.save()


def stage_sidebar_group(method, view, run_key: str, omit_fields=()) -> None:
    """FiftyOne's ``method.add_fields_to_sidebar_group(view, run_key, omit_fields)`` without its
    own save of the dataset document: the next save writes the group (``register_run``'s, made
    right after: one save of the whole document, with mongoengine's walk over every field
    declaration, where there were two)."""
    omit = set(omit_fields)
    paths = [f for f in method.get_fields(view, run_key) if "." not in f and f not in omit]
    dataset = view._root_dataset
    dataset.app_config._add_paths_to_sidebar_group(paths, run_key, dataset=dataset)


BIG_ARRAY = 10_000  # results arrays past this many items are written as JSON one by one
ARRAY_SLICE = 50_000  # and each of those a slice of this many items at a time (a whole one of 700,000: ~0.1 GB of lists and text)


def _big_arrays(fo_results) -> dict:
    import numpy as np

    values = {a: getattr(fo_results, a) for a in fo_results.attributes()}
    return {a: v for a, v in values.items() if isinstance(v, np.ndarray) and v.size > BIG_ARRAY}


def small_results_json(fo_results) -> list[bytes] | None:
    """:func:`results_json` made now, when none of its arrays is big (the results of a few thousand
    labels: a few hundred KB); None otherwise (then made while written, slice by slice: memory)."""
    return None if _big_arrays(fo_results) else list(results_json(fo_results))


def results_json(fo_results, on_slice=None):
    """``json.dumps(fo_results.serialize())`` as bytes, in pieces: the big arrays (a row per
    match: 1,000,000 labels) one by one, each :data:`ARRAY_SLICE` items at a time made into a
    list, then JSON, written and let go of before the next (all of them as lists, then one
    string and its bytes: ~0.4 GB at the end of a 100,000-sample run; one whole array at a
    time still ~0.1 GB, where round 1 of bench_eval_scale peaked). The same bytes as in one go.
    ``on_slice()``: called once each slice's piece is taken (written, by the consumer)."""
    from bson import json_util

    big = _big_arrays(fo_results)
    rest = copy.copy(fo_results)
    for a in big:
        setattr(rest, a, None)
    small = rest.serialize()
    yield b"{"
    for i, (a, value) in enumerate(small.items()):
        name = f"{', ' if i else ''}{json.dumps(a)}: "
        if a not in big:
            yield (name + json.dumps(value, default=json_util.default)).encode()
            continue
        yield (name + "[").encode()
        array = big[a]
        for start in range(0, len(array), ARRAY_SLICE):  # json.dumps of a list: its items joined by ", "
            text = json.dumps(array[start:start + ARRAY_SLICE].tolist(), default=json_util.default)[1:-1]
            yield (", " + text if start else text).encode()
            if on_slice is not None:
                on_slice()
        yield b"]"
    yield b"}"


# --------------------------------------------------------------------------------------------
# where an edit becomes a database write: one sample patch as one conditional update pipeline
# (patches are core.editing.changes.SamplePatch objects; read by attribute, no import upward)
# --------------------------------------------------------------------------------------------

GROUP = 25  # samples per update in resolved_updates


def resolved_updates(patches: list, docs: dict[str, dict]) -> list[Update]:
    """Updates that set the fields ``patches`` change to their values in ``docs`` (as resolved,
    after the patches), in each sample whose version is still the one the resolver read; a stale
    sample is left as it is. One update per ``GROUP`` samples, each sample picked by a
    ``$switch`` on ``_id``: for mongod a statement costs more than a sample (figures in
    BENCHMARKS.md, "write-back: one update per 25 samples")."""
    out = []
    for start in range(0, len(patches), GROUP):
        chunk = patches[start : start + GROUP]
        ids = [as_oid(p.sample_id) for p in chunk]
        branches = [{"case": {"$and": [{"$eq": ["$_id", oid]}, *_version_condition(p.expect)]},
                     "then": {"$mergeObjects": ["$$ROOT", {"$literal": _resolved_values(p, docs[p.sample_id])}]}}
                    for oid, p in zip(ids, chunk)]
        update = [{"$replaceWith": {"$switch": {"branches": branches, "default": "$$ROOT"}}}]
        out.append(Update({"_id": ids[0]}, update) if len(ids) == 1 else Update({"_id": {"$in": ids}}, update, many=True))
    return out


def _resolved_values(p, resolved: dict) -> dict:
    values = {lp.field: resolved.get(lp.field) for lp in p.labels}
    if p.tags_add or p.tags_remove:
        values["tags"] = resolved.get("tags") or []
    return {**values, **_version_values(p.result)}


def _version_condition(v) -> list[dict]:
    """Aggregation conditions: the sample is at version ``v`` (no revision counts as 0)."""
    return [{"$eq": [{"$ifNull": [f"${REV_FIELD}", 0]}, v.rev]}, {"$eq": [f"${MODIFIED_FIELD}", v.modified]}]


def _version_values(v) -> dict:
    if v.by is None:  # journaled before revisions: last_modified_at alone
        return {MODIFIED_FIELD: v.modified}
    return {REV_FIELD: v.rev, REV_BY_FIELD: v.by, MODIFIED_FIELD: v.modified}


version_values = _version_values  # a sample document's version fields at ``v`` (the edit session's cache)


def patch_update(p, arrays: Collection[str] = ()) -> Update:
    """One sample patch as an update conditional on the version it expects (none: unconditional).
    ``arrays``: the label fields whose label array the sample holds at that version (the caller
    knows them from the document the patch was resolved against)."""
    query = {"_id": as_oid(p.sample_id)}
    if p.expect is not None:
        query.update({REV_FIELD: p.expect.rev or None, MODIFIED_FIELD: p.expect.modified})
        keys = label_keys_update(p, arrays)
        if keys is not None:
            return Update(query, keys[0], array_filters=keys[1])
    return Update(query, [{"$set": update_expression(p)}])


def label_keys_update(p, arrays: Collection[str] = ()) -> tuple[dict, list] | None:
    """``p`` as an update document where that writes what ``update_expression`` writes, without
    mongod rebuilding whole label arrays through ``$map`` / ``$filter`` (a dense field of 1,500
    labels: ~2-3x its CPU and a rewrite of the whole document, #17.3): ``$set`` of each changed key
    of each label, the label found by an array filter on its id; in a field of ``arrays``, new
    labels (none of that id before, put at the end) ``$push``-ed and removed labels ``$pull``-ed by
    id. Only for an update conditional on a version (``patch_update``): the labels were there at
    that version, so the paths exist. None when ``p`` is not such a patch: tags, a label moved or
    put at a position, a field whose array may be missing or null, or a field changed two ways
    (mongod refuses conflicting paths in one update)."""
    if p.tags_add or p.tags_remove or not p.labels:
        return None
    keys: dict[tuple[str, str], dict] = {}
    pushed: dict[str, list] = {}
    pulled: dict[str, list] = {}
    for lp in p.labels:
        if not _plain(lp.field):
            return None
        if not lp.whole:
            if not lp.after or not all(_plain(k) for k in lp.after):
                return None
            keys.setdefault((lp.field, lp.label_id), {}).update(lp.after)  # twice: the later values win
        elif lp.field not in arrays:
            return None
        elif lp.after is None:
            pulled.setdefault(lp.field, []).append(as_oid(lp.label_id))
        elif lp.before is None and lp.index < 0 and lp.after.get("_id") == as_oid(lp.label_id):
            pushed.setdefault(lp.field, []).append(lp.after)
        else:
            return None
    keyed = {f for f, _ in keys}
    if keyed & pushed.keys() or keyed & pulled.keys() or pushed.keys() & pulled.keys() \
            or any(len({d["_id"] for d in docs}) < len(docs) for docs in pushed.values()):
        return None
    sets, filters = dict(_version_values(p.result)), []
    for n, ((fname, label_id), values) in enumerate(keys.items()):
        sets.update({f"{fname}.detections.$[l{n}].{k}": v for k, v in values.items()})
        filters.append({f"l{n}._id": as_oid(label_id)})
    update: dict = {"$set": sets}
    if pushed:
        update["$push"] = {f"{f}.detections": {"$each": docs} for f, docs in pushed.items()}
    if pulled:
        update["$pull"] = {f"{f}.detections": {"_id": {"$in": oids}} for f, oids in pulled.items()}
    return update, filters or None


def _plain(name) -> bool:
    return isinstance(name, str) and bool(name) and "." not in name and not name.startswith("$")


def update_expression(p) -> dict:
    """``$set`` stage of an update pipeline that applies ``p`` idempotently."""
    expr: dict = _version_values(p.result)
    by_field: dict[str, list] = {}
    for lp in p.labels:
        by_field.setdefault(lp.field, []).append(lp)
    for fname, patches in by_field.items():
        dets = {"$ifNull": [f"${fname}.detections", []]}
        for lp in patches:
            dets = _label_expression(dets, lp)
        expr[fname] = {"$mergeObjects": [{"$ifNull": [f"${fname}", {}]}, {"_cls": "Detections", "detections": dets}]}
    if p.tags_add or p.tags_remove:
        tags = {"$ifNull": ["$tags", []]}
        kept = {"$filter": {"input": tags, "cond": {"$not": [{"$in": ["$$this", {"$literal": p.tags_remove}]}]}}}
        new = {"$filter": {"input": {"$literal": p.tags_add}, "cond": {"$not": [{"$in": ["$$this", tags]}]}}}
        expr["tags"] = {"$concatArrays": [kept, new]}
    return expr


def _label_expression(dets, lp):
    oid = as_oid(lp.label_id)
    if not lp.whole:
        return {"$map": {"input": dets, "in": {"$cond": [
            {"$eq": ["$$this._id", oid]}, {"$mergeObjects": ["$$this", {"$literal": lp.after}]}, "$$this"]}}}
    without = {"$filter": {"input": dets, "cond": {"$ne": ["$$this._id", oid]}}}
    if lp.after is None:
        return without
    new = [{"$literal": lp.after}]
    if lp.index < 0:
        return {"$concatArrays": [without, new]}
    if lp.index == 0:
        return {"$concatArrays": [new, without]}
    return {"$let": {"vars": {"a": without}, "in": {"$concatArrays": [
        {"$slice": ["$$a", 0, lp.index]}, new, {"$slice": ["$$a", lp.index, 2**31 - 1]}]}}}
