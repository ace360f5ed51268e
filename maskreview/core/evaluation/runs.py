"""Results stored the FiftyOne way, under an eval key, so FiftyOne's App shows them.

Per sample: ``<key>_tp``, ``<key>_fp``, ``<key>_fn`` (ints). Per label, on both fields:
``<key>`` (``tp``/``fp``/``fn``/``ignored``), ``<key>_id`` (the matched label's id, ``""`` when
none), ``<key>_iou``, and ``<key>_biou`` (boundary IoU, segm). The run is registered with
FiftyOne's own COCO evaluation config and results classes, so ``dataset.list_evaluations()``,
``load_evaluation_results(key)`` (``mAP()``, ``print_report()``, PR curves) and the App's
evaluation panel work as for ``evaluate_detections(method="coco", compute_mAP=True)``.
All values go in one ``bulk_write``.
"""

from __future__ import annotations

import threading

import numpy as np

from maskreview.core.store.ids import new_id
from maskreview.core.evaluation.results import EvalResults, compute
from maskreview.core.fields import DEFAULT_EVAL_KEY, GT_FIELD, MODIFIED_FIELD, PRED_FIELD, REV_BY_FIELD, REV_FIELD
from maskreview.core import heap
from maskreview.core.gcpause import gc_paused
from maskreview.core.names import LABEL_SUFFIXES, check_eval_key
from maskreview.core.progress import Progress
from maskreview.core.store import dataset_of, reader
from maskreview.core.store import writer as sw
from maskreview.core.store.writer import bump_revisions, declare_revision_fields, revised
from maskreview.core.errors import CancelledError, MaskreviewError


def _label_values(results: EvalResults, table, other, rows: slice = slice(None)) -> list[list]:
    """The values stored per label of ``table``'s ``rows``, one list per suffix (in
    :data:`LABEL_SUFFIXES`' order): outcome, the matched label's id (``""`` when none), IoU and
    boundary IoU (None when none)."""
    match = table.match[rows]
    ids = other.label_id[np.maximum(match, 0)] if len(other) else np.full(len(match), "", object)
    match_ids = np.where(match >= 0, ids, "")
    iou, biou = (np.where(np.isnan(v), None, v) for v in (table.iou[rows], table.biou[rows]))
    return [table.outcome[rows].tolist(), match_ids.tolist(), iou.tolist(), biou.tolist()]


OWN_INFO = "maskreview_eval_key"  # in a label field's ``info``: the eval key whose run declared it


def _declare_fields(dataset, gt_field: str, pred_field: str, eval_key: str) -> None:
    """The run's fields; label fields carry ``info[OWN_INFO] = eval_key``, so that one left
    behind when FiftyOne deletes the run (``_biou``: FiftyOne does not know of it) is known as
    this key's own (:func:`_leftovers`)."""
    import fiftyone.core.fields as fof

    schema = {f"{eval_key}_{name}": fof.IntField() for name in ("tp", "fp", "fn")}
    own = {OWN_INFO: eval_key}
    for field in (gt_field, pred_field):
        prefix = f"{field}.detections.{eval_key}"
        schema.update({prefix: fof.StringField(info=own), f"{prefix}_id": fof.StringField(info=own),
                       f"{prefix}_iou": fof.FloatField(info=own), f"{prefix}_biou": fof.FloatField(info=own)})
    # the revision fields too (every value write is a revision): a dataset maskreview never
    # wrote to pays one schema merge, not three (each reloads the dataset: ~0.1 s)
    rev = "maskreview's edit revision (conflict detection)"
    schema.update({REV_FIELD: fof.IntField(description=rev), REV_BY_FIELD: fof.StringField(description=rev)})
    sw.declare_fields(dataset, schema)  # one schema merge (one reload), not a reload per field


def _leftovers(dataset, eval_key: str, gt_field: str, pred_field: str) -> list[str]:
    """A key with no run (FiftyOne's ``delete_evaluation`` removed it): its label fields that a
    maskreview run declared (marked in their ``info``) and FiftyOne left behind. Unmarked fields
    are someone else's: ``check_eval_key`` refuses them."""
    if eval_key in dataset.list_evaluations():
        return []
    schema = dataset.get_field_schema(flat=True)
    paths = [f"{f}.detections.{eval_key}{s}" for f in dict.fromkeys((gt_field, pred_field))
             for s in ("", "_id", "_iou", "_biou")]
    return [p for p in paths if p in schema and (schema[p].info or {}).get(OWN_INFO) == eval_key]


def _value_ops(results: EvalResults, eval_key: str, by_version: bool, writer: str, now,
               skip_stored: bool = False, span: tuple[int, int] | None = None,
               counts: dict | None = None) -> tuple[list, list[int], list]:
    """One update per sample with all its values (FiftyOne's set_values issues one per label),
    each a new revision of the sample (``writeback.revised``): an editor holding the version
    before it would otherwise write stale labels back over the values.

    Each update is guarded, so labels edited since they were read are never mislabelled: by the
    sample's version as read (``review_rev`` and ``last_modified_at``: any change to the sample
    fails it), or by the ids of its labels in place (fails only if the labels changed, not tags).

    ``skip_stored``: no update for a sample that holds these very values under the key, at the
    version read (this process wrote them: ``cache.Entry.stored``). Returns the updates, the
    index of each one's sample and each one's values (to remember once written).
    ``span``: the samples ``[first, end)`` only (their labels' values are made, no other's:
    a writer makes each batch's updates just before writing it, Cancel between);
    ``counts``: ``results.per_sample``, made once by the caller.
    """

    from bson import ObjectId

    n = len(results.sample_ids)
    s0, s1 = span if span is not None else (0, n)
    counts = [c[s0:s1].tolist() for c in (counts or results.per_sample).values()]  # tp, fp, fn
    per_field = []
    versions = results.sample_versions if by_version else None
    for field, table, other in ((results.gt_field, results.gt, results.pred), (results.pred_field, results.pred, results.gt)):
        l0, l1 = (int(b) for b in np.searchsorted(table.img, [s0, s1]))  # (labels in sample order)
        rows = slice(l0, l1)
        bounds = np.searchsorted(table.img[rows], np.arange(s0, s1 + 1)).tolist()  # sample k: bounds[k:k + 2]
        # the label ids as ObjectIds only where they guard the update (no sample version): the
        # results keep them as strs (an ObjectId a label held to the end was ~0.1 GB at 1,000,000)
        oids = [ObjectId(x) for x in table.label_id[rows]] if versions is None else None
        per_field.append((field, bounds, _label_values(results, table, other, rows), oids))
    # a sample's label paths, spelled once per number of labels (each path a value, suffix by suffix)
    paths: dict = {}

    def label_paths(field: str, size: int) -> tuple:
        got = paths.get((field, size))
        if got is None:
            got = paths[field, size] = tuple(f"{field}.detections.{j}.{eval_key}{suffix}"
                                             for suffix in LABEL_SUFFIXES for j in range(size))
        return got

    entries = results.entries if skip_stored and by_version and len(results.entries) == n else None
    ops, index, stored = [], [], []
    for k, (sid, tp, fp, fn) in enumerate(zip(results.sample_ids[s0:s1], *counts)):
        i = s0 + k
        values = [tp, fp, fn]  # what ``cache.Entry.stored`` holds: then a tuple per field and suffix
        for _, bounds, columns, _ in per_field:
            a, b = bounds[k], bounds[k + 1]
            values += [tuple(column[a:b]) for column in columns]
        values = tuple(values)
        if entries is not None:
            e, v = entries[i], versions[i]
            if e.stored.get(eval_key) == values and e.version[:2] == (v[REV_FIELD], v[MODIFIED_FIELD]):
                continue
        update = {f"{eval_key}_tp": tp, f"{eval_key}_fp": fp, f"{eval_key}_fn": fn, MODIFIED_FIELD: now}
        query = {"_id": ObjectId(sid)}
        if versions is not None:
            query.update(versions[i])
        for j, (field, bounds, _, oids) in enumerate(per_field):
            a, b = bounds[k], bounds[k + 1]
            if b > a:
                query[f"{field}.detections"] = {"$size": b - a}
                if versions is None:
                    query.update((f"{field}.detections.{x}._id", oid) for x, oid in enumerate(oids[a:b]))
                update.update(zip(label_paths(field, b - a), sum(values[3 + 4 * j:7 + 4 * j], ())))
        ops.append(sw.Update(query, revised({"$set": update}, writer)))
        index.append(i)
        stored.append(values)
    return ops, index, stored


WRITE_BATCH = 500  # updates per bulk write; ``stop`` is looked at between them (10 labels a sample: 1,000 took 1-5 s at load 8-13)


def _write(dataset, ops: list, stop: threading.Event | None, written: list, before=None) -> int:
    """``ops`` in batches of :data:`WRITE_BATCH`; ``written`` gets each batch's sample ids.
    ``before(ids)`` runs before each batch is written (keeping the values it overwrites).
    Returns how many matched; raises ``CancelledError`` when ``stop`` is set between batches."""
    matched = 0
    for start in range(0, len(ops), WRITE_BATCH):
        if stop is not None and stop.is_set():
            raise CancelledError("evaluation cancelled while its values were being written")
        batch = ops[start:start + WRITE_BATCH]
        ids = [op.filter["_id"] for op in batch]
        if before is not None:
            before(ids)
            if stop is not None and stop.is_set():  # (keeping the old values is a query: Cancel may come in it)
                raise CancelledError("evaluation cancelled while its values were being written")
        written.append(ids)  # before: a failed write may have written some
        matched += sw.write(dataset, batch).matched
    return matched


def _old_values(dataset, eval_key: str, fields, ids: list) -> dict:
    """What ``ids``' samples hold under ``eval_key`` now (``{id: raw BSON}``, the projection of
    its values and label ids: one bytes object a sample, about a fifth of the update made of
    it; 100,000 samples' updates were ~0.5 GB): a rerun in place that is cancelled or fails
    puts it back (:func:`_restore`, :meth:`_Store.abandon`)."""
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    names = [f"{eval_key}{s}" for s in ("", "_id", "_iou", "_biou")]
    projection = {f"{eval_key}_{n}": 1 for n in ("tp", "fp", "fn")}
    projection.update({f"{f}.detections.{n}": 1 for f in fields for n in names})
    projection.update({f"{f}.detections._id": 1 for f in fields})
    raw = reader.collection(dataset).with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
    return {doc["_id"]: doc.raw for doc in raw.find({"_id": {"$in": list(ids)}}, projection)}


def _put_back(doc: dict, eval_key: str, fields) -> tuple[dict, dict, dict]:
    """The update that puts back what a sample held (:func:`_old_values`):
    ``($set, $unset, {label field: number of labels})``."""
    per_sample = [f"{eval_key}_{n}" for n in ("tp", "fp", "fn")]
    names = [f"{eval_key}{s}" for s in ("", "_id", "_iou", "_biou")]
    put, unset, sizes = {}, {}, {}
    for p in per_sample:
        if p in doc:
            put[p] = doc[p]
        else:
            unset[p] = ""
    for f in fields:
        dets = ((doc.get(f) or {}).get("detections")) or []
        sizes[f] = len(dets)
        for j, det in enumerate(dets):
            for n in names:
                if n in det:
                    put[f"{f}.detections.{j}.{n}"] = det[n]
                else:
                    unset[f"{f}.detections.{j}.{n}"] = ""
    return put, unset, sizes


def _restore(dataset, eval_key: str, old: dict, writer: str, fields) -> None:
    """Put back what :func:`_old_values` kept, in the samples this run's ``writer`` wrote last
    (a sample written since, by an edit say, keeps that write)."""
    import bson

    again = f"evaluation {eval_key} restored {new_id()}"
    ops = []
    for sid, raw in old.items():
        put, unset, sizes = _put_back(bson.decode(raw), eval_key, fields)
        query = {"_id": sid, REV_BY_FIELD: writer, **{f"{f}.detections": {"$size": n} for f, n in sizes.items()}}
        update = {"$set": put} if put else {}
        if unset:
            update["$unset"] = unset
        ops.append(sw.Update(query, revised(update, again)))
    for start in range(0, len(ops), WRITE_BATCH):
        sw.write(dataset, ops[start:start + WRITE_BATCH])


def _write_values(dataset, results: EvalResults, eval_key: str, skip_stored: bool = False,
                  stop: threading.Event | None = None, written: list | None = None,
                  to_refresh: list | None = None, writer: str | None = None, before=None,
                  info: dict | None = None) -> None:
    """Every per-sample and per-label value, in bulk writes of :data:`WRITE_BATCH` (``stop``
    between them: the run is abandoned, :meth:`_Store.abandon`); samples changed since they
    were read (a tag, say) are written again guarded by their label ids. ``skip_stored``: the
    key's stored values were not deleted (a rerun in place), so samples this process left
    holding the same values are not written again. ``written``: each batch's sample ids.
    ``to_refresh``: on a writer thread, the ids whose loaded ``Sample`` objects the caller's
    thread brings up to date (FiftyOne's registry of them is not safe to walk from two threads);
    without it they are refreshed here. ``writer``: the name in ``review_rev_by``; ``before(ids)``:
    called before each batch; ``info`` gets ``now`` (the ``last_modified_at`` written) and
    ``matched``."""

    by_version = len(results.sample_versions) == len(results.sample_ids)
    writer = writer or f"evaluation {eval_key} {new_id()}"
    now = sw.now_ms()  # as MongoDB keeps it: the version a written sample has is known (cache)
    written = [] if written is None else written
    info = {} if info is None else info
    info["now"] = now
    counts, failed, ids = results.per_sample, 0, []
    info["matched"] = 0
    for s0 in range(0, len(results.sample_ids), WRITE_BATCH):  # a batch's updates made just before it
        if stop is not None and stop.is_set():
            raise CancelledError("evaluation cancelled while its values were being written")
        span = (s0, min(s0 + WRITE_BATCH, len(results.sample_ids)))
        ops, index, stored = _value_ops(results, eval_key, by_version, writer, now, skip_stored, span, counts)
        if not ops:
            written.append([])  # (a batch: the progress counts them)
        matched = _write(dataset, ops, stop, written, before)
        if matched == len(ops) and by_version and results.cache is not None:
            for i, values in zip(index, stored):  # each sample is now at the next revision, labels as read
                e, v = results.entries[i], results.sample_versions[i]
                if e.version[:2] == (v[REV_FIELD], v[MODIFIED_FIELD]):
                    results.cache.rewritten(results.sample_ids[i], e,
                                            ((v[REV_FIELD] or 0) + 1, now, *e.version[2:]), eval_key, values)
        elif matched != len(ops) and by_version:  # rewriting the same values is harmless
            ops = _value_ops(results, eval_key, False, writer, now, span=span, counts=counts)[0]
            index = range(*span)
            matched = _write(dataset, ops, stop, written, before)
        failed += len(ops) - matched
        info["matched"] += matched
        ids.extend(results.sample_ids[i] for i in index)
    if to_refresh is None:
        sw.refresh_loaded(dataset, ids)
    else:
        to_refresh.extend(ids)
    if failed:
        raise MaskreviewError(f"{failed} samples changed while being evaluated; evaluate again")


def _delete_run(dataset, eval_key: str) -> None:
    """FiftyOne's ``delete_evaluation``, and the ``<key>_biou`` label values it does not know of."""
    config = dataset.get_evaluation_info(eval_key).config
    dataset.delete_evaluation(eval_key)  # unsets the run's label attributes in every sample
    bump_revisions(dataset, {}, f"evaluation {eval_key} deleted {new_id()}")
    schema = dataset.get_field_schema(flat=True)
    biou = [p for p in (f"{f}.detections.{eval_key}_biou" for f in (config.gt_field, config.pred_field)) if p in schema]
    if biou:
        dataset.delete_sample_fields(biou, error_level=1)


def _unset_values(dataset, eval_key: str, fields, sample_ids=None) -> None:
    """Remove every value of ``eval_key`` still in the samples (of ``sample_ids`` only, when
    given), declared or not, as new revisions of those samples."""
    writer = f"evaluation {eval_key} abandoned {new_id()}"
    per_sample = [f"{eval_key}_{n}" for n in ("tp", "fp", "fn")]
    only = {} if sample_ids is None else {"_id": {"$in": list(sample_ids)}}
    names = [f"{eval_key}{s}" for s in ("", "_id", "_iou", "_biou")]
    fields = list(dict.fromkeys(fields))
    # first, in one update per sample, the samples holding both label lists (each is rewritten
    # once, not once per op: a Cancel's undo of what was written costs a third); then the rest
    held = [{p: {"$exists": True}} for p in per_sample]
    held += [{f"{f}.detections.{n}": {"$exists": True}} for f in fields for n in names]
    every = dict.fromkeys(per_sample, "")
    every.update({f"{f}.detections.$[].{n}": "" for f in fields for n in names})
    ops = [sw.Update({**only, **{f"{f}.detections": {"$type": "array"} for f in fields}, "$or": held},
                     revised({"$unset": every}, writer), many=True),
           sw.Update({**only, "$or": [{p: {"$exists": True}} for p in per_sample]},
                     revised({"$unset": dict.fromkeys(per_sample, "")}, writer), many=True)]
    for field in fields:
        ops.append(sw.Update({**only, "$or": [{f"{field}.detections.{n}": {"$exists": True}} for n in names]},
                             revised({"$unset": {f"{field}.detections.$[].{n}": "" for n in names}}, writer), many=True))
    sw.write(dataset, ops, ordered=True)


def _config(gt_field: str, pred_field: str, iou_type: str, iou_thresh: float, iou_thrs) -> object:
    from fiftyone.utils.eval.coco import COCOEvaluationConfig

    return COCOEvaluationConfig(pred_field, gt_field, iou=iou_thresh, classwise=True, use_masks=iou_type == "segm",
                                compute_mAP=True, iou_threshs=[float(t) for t in iou_thrs], max_preds=100)


class _Store:
    """Storing a run so that the slow parts overlap the evaluation and every part but the last,
    short one can be cancelled: the values are written (:meth:`start_writing`, in a thread: the
    database does the work) while COCOeval accumulates, in batches with Cancel between them; the
    run's results for FiftyOne are made; then, last, the run is registered and its results saved
    (:meth:`finish`). A Cancel or a failure before that leaves the dataset as it was
    (:meth:`abandon`): a new key's written values are removed; a rerun in place puts back what
    the samples held under the key before (kept batch by batch before each write), and the old
    run stays registered with its results. Re-running a key over other fields or another view
    deletes the old run first (the same field names): that one writes to the end."""

    def __init__(self, view, eval_key: str, gt_field: str, pred_field: str, iou_type: str, iou_thresh: float,
                 progress: Progress | None = None):
        self.view, self.eval_key = view, eval_key
        self.progress = progress or Progress()
        self._stop = threading.Event()
        self._written: list[list] = []  # each batch's sample ids, as the writer starts it
        self._to_refresh: list[str] = []  # what the writer wrote, for refresh_loaded on this thread
        self._old: dict = {}  # a rerun in place: what each written sample held under the key (raw BSON)
        self._info: dict = {}  # the writer's now and matched
        self._name = f"evaluation {eval_key} {new_id()}"  # review_rev_by of this run's writes
        self.dataset = dataset_of(view)
        leftovers = _leftovers(self.dataset, eval_key, gt_field, pred_field)  # of a run FiftyOne deleted
        check_eval_key(self.dataset, eval_key, gt_field, pred_field, leftovers)  # before anything is written
        if leftovers:  # as _delete_run: the samples' values change, so does their revision
            self.dataset.delete_sample_fields(leftovers, error_level=1)
            bump_revisions(self.dataset, {}, f"evaluation {eval_key} leftovers deleted {new_id()}")
        self._args = (gt_field, pred_field, iou_type, iou_thresh)
        self._writer = None
        self._error: BaseException | None = None
        self.registered = False
        self._existing = eval_key in self.dataset.list_evaluations()
        # the key holds a run of the same fields over the whole dataset: every stored value is
        # overwritten, so FiftyOne's slow field deletion is skipped (and values may be written
        # before the run is registered again)
        self._in_place = False
        if self._existing:
            old = self.dataset.get_evaluation_info(eval_key).config
            whole = view.view() == self.dataset.view() if hasattr(view, "view") else False
            self._in_place = whole and (old.gt_field, old.pred_field) == (gt_field, pred_field)

    @property
    def in_place(self) -> bool:
        """The key's values stay in place until overwritten (a rerun of the same fields)."""
        return self._in_place

    @property
    def _cancellable(self) -> bool:
        """Its writes can be undone: a new key, or a rerun in place (the old values kept)."""
        return not self._existing or self._in_place

    def register_if_new(self) -> None:
        """Nothing now: a key is registered once its results are complete (:meth:`finish`),
        so a Cancel before then has no run to remove (at 100,000 samples FiftyOne's
        ``delete_evaluation`` scans every sample: tens of seconds); its values may be written
        before (a new key has no old fields to delete), and are removed by id when abandoned."""

    def abandon(self) -> None:
        """The evaluation failed or was cancelled: stop the writer (between two batches) and undo
        what this run wrote: a new key's values (by sample id; a run registered for it and the
        fields it declared go too), a rerun in place's by putting back the values kept."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join()
        if self._existing:
            if self._in_place and self._old:
                written = {sid for batch in self._written for sid in batch}  # (a batch kept may not be written)
                old = {sid: raw for sid, raw in self._old.items() if sid in written}
                _restore(self.dataset, self.eval_key, old, self._name, dict.fromkeys(self._args[:2]))
                sw.refresh_loaded(self.dataset, [str(i) for i in old])
            return
        if self.eval_key in self.dataset.list_evaluations():
            _delete_run(self.dataset, self.eval_key)
        gt_field, pred_field = self._args[:2]
        written = [sid for batch in self._written for sid in batch]
        for start in range(0, len(written), WRITE_BATCH):
            _unset_values(self.dataset, self.eval_key, (gt_field, pred_field), written[start:start + WRITE_BATCH])
        # the fields declared for it (start_writing), or that no run accounts for any more (its
        # run deleted meanwhile, by FiftyOne's App say): no sample holds a value of them now (only
        # this run wrote them), so they leave the schema only, with no scan of every sample
        schema = self.dataset.get_field_schema(flat=True)
        mine = [f"{self.eval_key}_{n}" for n in ("tp", "fp", "fn")]
        mine += [f"{f}.detections.{self.eval_key}{s}" for f in dict.fromkeys((gt_field, pred_field))
                 for s in ("", "_id", "_iou", "_biou")]
        sw.undeclare_fields(self.dataset, [path for path in mine if path in schema])
        self.registered = False

    def _build(self) -> None:
        from pycocotools.cocoeval import Params

        if getattr(self, "method", None) is None:
            gt_field, pred_field, iou_type, iou_thresh = self._args
            self.config = _config(gt_field, pred_field, iou_type, iou_thresh, Params(iou_type).iouThrs)
            self.method = self.config.build()

    def register(self) -> None:
        dataset, eval_key = self.dataset, self.eval_key
        gt_field, pred_field = self._args[:2]
        if self._existing and not self._in_place:
            _delete_run(dataset, eval_key)
        self._build()
        # the key's sidebar group goes into the dataset document that registering saves (FiftyOne's
        # add_fields_to_sidebar_group would save it once more)
        sw.stage_sidebar_group(self.method, self.view, eval_key, omit_fields=(gt_field, pred_field))
        self.method.register_run(self.view, eval_key, overwrite=True, cleanup=not self._in_place)
        _declare_fields(dataset, gt_field, pred_field, eval_key)
        self.registered = True

    def _keep_old(self, ids: list) -> None:
        """Before a batch of a rerun in place is written: what its samples hold (once per sample)."""
        todo = [i for i in ids if i not in self._old]
        if todo:
            gt_field, pred_field = self._args[:2]
            self._old.update(_old_values(self.dataset, self.eval_key, dict.fromkeys((gt_field, pred_field)), todo))

    def start_writing(self, results: EvalResults) -> None:

        if self._existing and not (self.registered or self._in_place):
            return  # registering will delete the key's old fields: write after it (finish)

        def write():
            try:
                _write_values(self.dataset, results, self.eval_key, skip_stored=self._in_place,
                              stop=self._stop if self._cancellable else None, written=self._written,
                              to_refresh=self._to_refresh, writer=self._name,
                              before=self._keep_old if self._in_place else None, info=self._info)
            except BaseException as exc:  # re-raised by finish()
                self._error = exc

        # here, not in the thread (a schema change), and before the first write: FiftyOne cannot
        # load a sample holding an undeclared sample field (<key>_tp...), so a window between the
        # first batch and the merge would fail readers (App, GUI). The key's fields with the
        # revision fields, one schema merge (each reloads the dataset), not one now and one when
        # registered; a Cancel takes them out of the schema again (abandon)
        _declare_fields(self.dataset, *self._args[:2], self.eval_key)
        declare_revision_fields(self.dataset)  # (their types checked: declared above when missing)
        self._n_samples = len(results.sample_ids)
        self._writer = threading.Thread(target=write, name="maskreview-eval-write", daemon=True)
        self._writer.start()

    def _wait_for_writer(self) -> None:
        """Join the writer, reporting its batches and looking at Cancel meanwhile (but while an
        existing key's values are overwritten after its old run was deleted: to the end)."""
        p, counted = self.progress, 0
        p.total = max(p.total, p.done + -(-self._n_samples // WRITE_BATCH))
        while True:
            alive = self._writer.is_alive()
            self._writer.join(0.05)
            while counted < len(self._written):
                counted += 1
                p.advance()
            if self._cancellable:
                p.check()
            if not alive:
                break

    def _settle_fingerprint(self, results: EvalResults) -> None:
        """``results.fingerprint`` as of after this run's writes (``stored.keep`` compares it on
        reopen); None when any other write to a sample came after the labels were read."""
        if results.fingerprint is None:
            return
        n, newest = results.fingerprint
        now = self._info.get("now") if self._info.get("matched") else None
        query = {MODIFIED_FIELD: {"$gt": newest}} if newest is not None else {}
        if now is not None:
            query = {"$and": [query, {MODIFIED_FIELD: {"$ne": now}}]}
        if reader.collection(self.dataset).find_one(query, {"_id": 1}) is not None:
            results.fingerprint = None  # a sample changed since it was read (or one was added)
        elif now is not None:
            results.fingerprint = (n, now if newest is None else max(newest, now))

    def finish(self, results: EvalResults) -> None:
        p = self.progress
        if self._existing and not self._in_place and not self.registered:
            self.register()  # deletes the key's old run and fields (the same names) before writing
        if self._writer is None:
            self.start_writing(results)
        # FiftyOne's results object and its JSON (when small) made while mongod writes the values:
        # the main thread would only wait for the writer meanwhile
        self._build()
        fo_results = _fo_results(self.view, self.config, self.eval_key, results, self.method)
        made = sw.small_results_json(fo_results)
        self._wait_for_writer()
        if self._error is not None:
            sw.refresh_loaded(self.dataset, self._to_refresh)
            raise self._error
        self._settle_fingerprint(results)
        p.total = max(p.total, p.done + 3)
        p.advance()
        p.check()  # the last Cancel: what follows is short and leaves the run stored
        if not self.registered:
            self.register()
        sw.refresh_loaded(self.dataset, self._to_refresh)  # once declared: FiftyOne loads declared fields only
        p.advance()
        sw.save_run_results(self.method, self.view, self.eval_key, fo_results, p, made)  # (its sidebar group: register)
        results.eval_key = self.eval_key
        p.advance()


def store(view, results: EvalResults, eval_key: str = DEFAULT_EVAL_KEY) -> None:
    """Write ``results`` into the view's samples and labels and register the run."""
    _Store(view, eval_key, results.gt_field, results.pred_field, results.iou_type, results.iou_thresh).finish(results)


def _objects(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """An object array of ``values`` at ``where``, None elsewhere (as ``np.asarray`` makes of a
    list holding Nones); plain when nothing is missing."""
    if where.all():
        return np.asarray(values.tolist())
    out = np.full(len(where), None, dtype=object)
    out[where] = values[where] if len(values) == len(where) else values
    return out


def _fo_results(view, config, eval_key: str, results: EvalResults, method):
    """FiftyOne's ``COCODetectionResults`` of these results, its arrays made with numpy: the
    ``(gt label, pred label, iou, confidence, gt id, pred id)`` list FiftyOne takes (each TP
    and FP prediction in order, then each FN GT) cost ~9 s of CPU at 1,000,000 labels
    (``zip(*matches)`` and ``np.asarray`` of tuples), a wait with no progress."""
    from fiftyone.utils.eval.coco import COCODetectionResults

    fo_results = COCODetectionResults(
        view, config, eval_key, [], results.precision, results.rec_thrs, results.iou_thrs, results.classes,
        recall_sweep=results.recall, thresholds=results.pr_scores, backend=method)
    gt, pred = results.gt, results.pred
    d = np.flatnonzero((pred.outcome == "tp") | (pred.outcome == "fp"))
    g = np.flatnonzero(gt.outcome == "fn")
    tp = pred.outcome[d] == "tp"
    match = pred.match[d]
    missing = fo_results.missing
    names = np.array([*results.classes, missing])
    none = len(results.classes)
    true_cls = np.concatenate([np.where(tp, gt.cls[np.where(tp, match, 0)] if len(gt) else none, none), gt.cls[g]])
    pred_cls = np.concatenate([pred.cls[d], np.full(len(g), none)])
    n_d, n_g = len(d), len(g)
    has_true = np.concatenate([tp, np.ones(n_g, bool)])
    has_pred = np.concatenate([np.ones(n_d, bool), np.zeros(n_g, bool)])
    fo_results.ytrue = names[true_cls.astype(np.int64)] if len(true_cls) else np.asarray([])
    fo_results.ypred = names[pred_cls.astype(np.int64)] if len(pred_cls) else np.asarray([])
    iou = np.concatenate([pred.iou[d].astype(float), np.zeros(n_g)])
    fo_results.ious = _objects(iou, np.concatenate([tp, np.zeros(n_g, bool)])) if len(iou) else np.array([])
    conf = np.concatenate([pred.score[d].astype(float), np.zeros(n_g)])
    fo_results.confs = _objects(conf, has_pred) if len(conf) else np.asarray([])
    true_ids = np.concatenate([gt.label_id[np.where(tp, match, 0)] if len(gt) else np.full(n_d, None, object),
                               gt.label_id[g]]).astype(object)
    fo_results.ytrue_ids = _objects(true_ids, has_true) if len(true_ids) else np.asarray([])
    pred_ids = np.concatenate([pred.label_id[d], np.full(n_g, None, object)]).astype(object)
    fo_results.ypred_ids = _objects(pred_ids, has_pred) if len(pred_ids) else np.asarray([])
    return fo_results


def evaluate_and_store(view, gt_field: str = GT_FIELD, pred_field: str = PRED_FIELD,
                       iou_type: str = "segm", eval_key: str | None = DEFAULT_EVAL_KEY, iou_thresh: float = 0.5,
                       boundary: bool = True, occlusion: bool = True,
                       progress: Progress | None = None, reuse: bool = True) -> EvalResults:
    """Evaluate (see :func:`results.compute`) and, when ``eval_key`` is given, store the results:
    the run is registered while COCOeval works, and the values are written while it accumulates.
    ``reuse``: what samples unchanged since this process's last run had is taken (:mod:`cache`),
    and rerunning a key in place writes only the samples whose values are not already stored."""
    progress = progress or Progress()
    progress.start(4, "evaluating")  # shown at once: checking the key may scan every sample
    run = _Store(view, eval_key, gt_field, pred_field, iou_type, iou_thresh, progress) if eval_key is not None else None
    cancelled, leftover, results = None, [], None
    # what the run keeps is frozen when it ends (gc_paused: keep): it makes no cyclic garbage, and
    # a cancelled one leaves none either (its error and frames let go of, below)
    with gc_paused(keep=True):
        try:
            results = compute(view, gt_field, pred_field, iou_type, iou_thresh, boundary, occlusion, progress,
                              while_evaluating=run.register_if_new if run else None,
                              before_accumulate=run.start_writing if run else None, reuse=reuse,
                              stored_key=eval_key if run is not None and run.in_place else None)
            if run is not None:
                run.finish(results)
        except CancelledError as exc:  # nothing of this run is left behind
            if run is not None:
                run.abandon()
                run._error = None  # (the writer's error: its frames hold the run, a cycle)
            # raised below as a new error without this one's traceback: its frames hold every
            # table of the run, alive as long as the caller keeps the error, and the collector
            # would walk them all (seconds at 100,000 samples) once the pause ends; they are
            # freed on a thread (below, once this block no longer holds the error)
            cancelled = CancelledError(*exc.args)
            leftover.append(exc)
        except BaseException:  # failed, storing too: the same
            if run is not None:
                run.abandon()
            raise
        if cancelled is not None:
            leftover += [run, results]  # (results: when the Cancel came while its values were written)
            run = results = None
    if cancelled is not None:
        heap.free_later(leftover)
        leftover = None
        try:
            raise cancelled
        finally:
            cancelled = None  # (this frame, in the error's traceback, would hold the error: a cycle)
    return results
