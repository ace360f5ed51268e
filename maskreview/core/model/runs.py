"""Dataset runs: run an :class:`~maskreview.core.model.engine.Engine` over a FiftyOne dataset or view.

The next images are decoded on a thread pool while the model works (or, on the CPU, several images
decode and predict at once, one torch thread each: :func:`run_inference`'s ``lanes``), results are written in bulk
as ``fo.Detections`` with box-relative masks, and samples already predicted by the same model and
settings are skipped. A run never destroys review work: it replaces only the model's own untouched
labels (:mod:`maskreview.core.model.reviewed`), writes only into a field that is free or holds the
same model's output, and records its model on the field (:mod:`maskreview.core.model.provenance`).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from maskreview.core.errors import BadInputError, CancelledError, MaskreviewError
from maskreview.core.fields import MODIFIED_FIELD, REV_BY_FIELD, run_field
from maskreview.core.images import read_image
from maskreview.core.model import sharding
from maskreview.core.model.engine import Engine
from maskreview.core.model.sharding import Shard
from maskreview.core.model.provenance import (  # noqa: F401 (re-exported)
    DEFAULT_FIELD,
    RUNS_INFO_KEY,
    FieldTakenError,
    check_field_for,
    field_holder,
    forget_run,
    record_run,
)
from maskreview.core.progress import Progress
from maskreview.core.store import dataset_of, fiftyone, lost_database, reader
from maskreview.core.store.metadata_lock import dataset_metadata_lock
from maskreview.core.names import check_field_name
from maskreview.core.store.ids import new_id
from maskreview.core.store.writer import SampleWriter, Update, declare_revision_fields, now_ms, revised, unchanged_since
from maskreview.core.model.reviewed import merge, review_projection


@dataclass
class InferenceReport:
    predicted: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    decode_wait_seconds: float = 0.0  # time the model sat waiting for a decoded image
    cancelled: bool = False
    kept_reviewed: int = 0  # reviewer labels kept in the samples written
    replaced: int = 0  # the model's own untouched labels replaced
    dropped_as_reviewed: int = 0  # new predictions left out: they overlap a kept reviewer label
    dropped_as_deleted: int = 0  # new predictions left out: the reviewer deleted them before

    @property
    def images_per_second(self) -> float:
        return self.predicted / self.seconds if self.seconds else 0.0


def _decode(path: str):
    try:
        return read_image(path)
    except Exception as exc:  # a bad image must not stop the run
        return exc if isinstance(exc, MaskreviewError) else BadInputError(f"{path}: cannot decode image ({exc})")


def prefetched(paths: Iterable[str], workers: int = 2, depth: int = 8,
               decode: Callable[[str], object] = _decode, name: str = "decode"):
    """Yield ``(path, image or exception)`` in order while the next ``depth`` decode on threads
    (``workers`` 0: each decoded when it is asked for, on the caller's thread)."""
    paths = list(paths)
    if workers <= 0:
        yield from ((path, decode(path)) for path in paths)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    try:
        futures = deque(pool.submit(decode, p) for p in paths[:depth])
        upcoming = len(futures)
        for path in paths:
            current = futures.popleft()
            if upcoming < len(paths):
                futures.append(pool.submit(decode, paths[upcoming]))
                upcoming += 1
            yield path, current.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def cpu_lanes(engine: Engine) -> int:
    """Images a CPU run predicts at once, one torch thread each: one per torch thread it would
    otherwise give one forward pass (1 on a GPU, or where a batch takes several images). Two
    single-threaded forward passes on two cores predicted the demo set ~25 % faster than one
    two-threaded pass, on ~20 % less CPU: no OpenMP thread spins at a barrier waiting for its
    partner, and each pass's Python and small ops overlap the other's (BENCHMARKS.md, #17
    inference row, eighth session)."""
    if engine.device != "cpu" or engine.batch_size != 1:
        return 1
    return max(1, engine.cpu_threads)


def decode_threads(engine: Engine) -> int:
    """Threads that decode (and resize, :meth:`Engine.prepare`) the next images while the model
    works: 4 for a GPU where the cores allow (R50-FPN at 8 images a pass on an H200 takes ~10 ms
    an image; decoding and resizing one 640x480 JPEG ~17 ms), else 2, or none (each image decoded
    just before its forward pass, as a bare predictor loop does) when the model runs on the CPU
    with a torch thread for every core: a decode thread then only takes a core from one of the
    model's OpenMP threads, whose partner spins at the next barrier until it is back, for a
    decode that is ~1 % of a forward pass (BENCHMARKS.md, #17 inference row, helper wi)."""
    if engine.device == "cpu" and engine.cpu_threads >= (os.cpu_count() or 1):
        return 0
    return 4 if engine.device != "cpu" and (os.cpu_count() or 1) >= 8 else 2


def check_output_field(dataset, name: str, engine=None) -> None:
    """``name`` must be free, or a Detections field holding this model's output (``engine``).

    This keeps ``--field ground_truth`` from overwriting labels that no model wrote, and a model
    from writing into another model's field (:class:`~maskreview.core.model.provenance.FieldTakenError`).
    """

    fo = fiftyone()
    check_field_name(dataset, name, fo.Detections, "field")
    check_field_name(dataset, run_field(name), fo.StringField, "field")
    if engine is not None:
        check_field_for(dataset, name, engine)
    elif field_holder(dataset, name) == {}:
        raise FieldTakenError(name, "pred", None)


def run_inference(view, engine: Engine, field: str = DEFAULT_FIELD, progress: Progress | None = None,
                  overwrite: bool = False, batch_size: int | None = None, write_every: int = 16,
                  write_seconds: float | None = None, on_written: Callable[[list[str]], None] | None = None,
                  decode_workers: int | None = None, shard: Shard | None = None,
                  before_image: Callable[[], object] | None = None, lanes: int = 1) -> InferenceReport:
    """Predict every sample of ``view`` into ``field``; cancellable and resumable; reviewer work kept.

    Each sample's ``<field>_run`` holds the run key of the model that wrote it, so a rerun
    skips what the same model already did (unless ``overwrite``). Writing a sample replaces only
    the model's own untouched labels: reviewer work stays exactly as it is and deleted predictions
    stay deleted (:mod:`maskreview.core.model.reviewed`). A field holding another model's output is
    refused (:class:`~maskreview.core.model.provenance.FieldTakenError`, naming a free field).

    Nothing is written before the first batch is predicted (a model that fails changes nothing);
    then results are written every ``write_every`` samples (or ``write_seconds`` after the last
    write) and when the run stops for any reason (cancel and errors included), never erasing
    anything. Each write is conditional on the sample being unchanged since it was read, so an
    edit made meanwhile (the GUI edits during a background run) is merged, not overwritten.

    ``batch_size``: images per forward pass (default: the engine's, several on a GPU).
    ``shard``: only the view's samples in that shard (:mod:`maskreview.core.model.sharding`), for
    workers that split a run between them; they may run at the same time, anywhere.
    ``before_image``: called before each image is predicted (a CPU run's share of the cores).
    ``decode_workers``: threads decoding the next images (default: :func:`decode_threads`).
    ``lanes`` (CPU, ``before_image`` unset): that many images decode and predict at once on
    threads, torch running one thread each meanwhile (:func:`cpu_lanes`); results still come in
    order, and a cancel waits for at most the passes already running.
    """
    if lanes > 1 and (engine.device != "cpu" or before_image is not None):
        raise ValueError("lanes are for a CPU run whose torch threads nothing else sets")
    progress = progress or Progress()
    batch_size = batch_size or engine.batch_size
    decode_workers = decode_threads(engine) if decode_workers is None else decode_workers
    dataset = dataset_of(view)
    check_output_field(dataset, field, engine)
    run_field_name = run_field(field)
    schema = dataset.get_field_schema()
    ids, paths = view.values(["id", "filepath"])
    done_keys = view.values(run_field_name) if run_field_name in schema else [None] * len(ids)
    if shard is not None:
        ids, paths, done_keys = (list(c) for c in zip(*[row for row, mine in zip(zip(ids, paths, done_keys),
                                                                                  sharding.select(ids, shard)) if mine])
                                 or ([], [], []))
    todo = [(i, p) for i, p, k in zip(ids, paths, done_keys) if overwrite or k != engine.run_key]
    report = InferenceReport(skipped=len(ids) - len(todo))
    record = {**engine.provenance, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    writer = _Writer(dataset, field, engine.run_key, record, report, shard)
    pending: dict[str, tuple] = {}
    last_write = [time.monotonic()]

    def flush():
        last_write[0] = time.monotonic()
        if pending:
            written = writer.write(pending)
            pending.clear()
            if on_written and written:
                on_written(written)

    progress.start(len(todo), f"inference ({engine.spec.name})")
    start = time.perf_counter()
    if lanes > 1:
        stream = prefetched([p for _, p in todo], workers=lanes, depth=2 * lanes,
                            decode=lambda path: _decode_and_predict(engine, path), name="lane")
        restore_threads = engine.cpu_threads
        engine.set_cpu_threads(1)
    else:
        stream = prefetched([p for _, p in todo], workers=decode_workers, depth=max(8, 2 * batch_size),
                            decode=lambda path: _decode_and_prepare(engine, path))
    # a batch's label documents are made on this thread while the next batch's forward pass runs
    finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="documents")
    in_flight: list = []  # [(sample ids, future of their documents)], at most one

    def collect():
        if in_flight:
            sample_ids, future = in_flight.pop()
            for sample_id, predicted in zip(sample_ids, future.result()):
                pending[sample_id] = predicted  # (label documents, height, width)
                report.predicted += 1
            progress.advance(len(sample_ids))

    def predict(batch):
        raw = engine.infer([inputs for _, inputs in batch])
        collect()
        in_flight.append(([sample_id for sample_id, _ in batch],
                          finisher.submit(lambda: [engine.documents(r) for r in raw])))

    try:
        batch: list[tuple[str, dict]] = []
        for sample_id, _ in todo:
            progress.check()
            if before_image is not None:
                before_image()
            waited = time.perf_counter()
            _, image = next(stream)
            if lanes == 1:  # (in lanes the wait is for the prediction too)
                report.decode_wait_seconds += time.perf_counter() - waited
            if isinstance(image, Exception):
                report.failures.append(str(image))
                progress.advance()
                continue
            if lanes > 1:  # predicted already, in its lane
                pending[sample_id] = image
                report.predicted += 1
                progress.advance()
            else:
                batch.append((sample_id, image))
                if len(batch) < batch_size:
                    continue
                predict(batch)
                batch = []
            if len(pending) >= write_every or (
                    write_seconds is not None and time.monotonic() - last_write[0] >= write_seconds):
                flush()
        if batch:
            predict(batch)
        collect()
    except BaseException as exc:
        report.cancelled = isinstance(exc, (CancelledError, KeyboardInterrupt))
        if lost_database(exc) is not None:  # each write would wait on it again; a rerun resumes
            pending.clear()
            in_flight.clear()
            writer.started = False
        raise
    finally:
        stream.close()  # the lanes' passes that run finish first
        if in_flight and in_flight[0][1].exception() is None:  # predicted before the stop: written too
            collect()
        finisher.shutdown(wait=True)
        if lanes > 1:
            engine.set_cpu_threads(restore_threads)
        try:
            flush()
        finally:
            report.seconds = time.perf_counter() - start
            writer.finish()
            progress.finish()
    return report


class _Writer:
    """Writes predicted samples, merged around reviewer work; declares the fields and records the
    run (``core.provenance``) only once something is written."""

    def __init__(self, dataset, field: str, run_key: str, record: dict, report: InferenceReport,
                 shard: Shard | None = None):
        self.dataset, self.field, self.run_key = dataset, field, run_key
        self.record, self.report, self.shard = record, report, shard
        self.started = False

    def _start(self) -> None:

        fo = fiftyone()
        # other workers of the run (shards) may declare the same fields now: one at a time, each
        # from the database's schema (see metadata_lock)
        with dataset_metadata_lock(self.dataset):
            schema = self.dataset.get_field_schema()
            if self.field not in schema:
                self.dataset.add_sample_field(self.field, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
            if run_field(self.field) not in schema:
                self.dataset.add_sample_field(run_field(self.field), fo.StringField)
            declare_revision_fields(self.dataset)  # each write is a new revision (writeback.revised)
        record_run(self.dataset, self.field, self.record, self.shard)
        schema = self.dataset.get_field_schema()
        self.label_fields = [name for name, f in schema.items() if getattr(f, "document_type", None) is fo.Detections]
        self.writer = f"model run {new_id()}"  # its review_rev_by: tells its writes from others'
        self.started = True

    def write(self, pending: dict[str, tuple]) -> list[str]:
        """Write ``{sample id: (label documents, height, width)}``; returns the ids written."""

        if not self.started:
            self._start()
        projection = review_projection(self.field, self.label_fields)
        todo = dict(pending)
        for _attempt in range(5):  # a sample edited between the read and the write is read again
            stamp = now_ms()
            ops, merges = [], {}
            for sid, doc in reader.by_ids(self.dataset, todo, projection).items():
                new, height, width = todo[sid]
                merges[sid] = merged = merge(doc, self.field, new, height, width)
                update = {"$set": {self.field: {"_cls": "Detections", "detections": merged.detections},
                                   run_field(self.field): self.run_key, MODIFIED_FIELD: stamp}}
                ops.append(Update({"_id": doc["_id"], **unchanged_since(doc)}, revised(update, self.writer)))
            SampleWriter(self.dataset).write(ops)  # one round trip, unordered
            landed = set(reader.by_ids(self.dataset, merges, ["_id"],
                                       {MODIFIED_FIELD: stamp, REV_BY_FIELD: self.writer}))
            for sid in landed:
                self._count(merges[sid])
                todo.pop(sid)
            for sid in set(todo) - set(merges):  # deleted from the dataset meanwhile
                todo.pop(sid)
            if not todo:
                break
        self.report.failures.extend(f"sample {sid}: kept changing while the model's output was written; "
                                    "run again" for sid in todo)
        return [sid for sid in pending if sid not in todo]

    def _count(self, merged) -> None:
        self.report.kept_reviewed += merged.kept
        self.report.replaced += merged.replaced
        self.report.dropped_as_reviewed += merged.dropped_as_reviewed
        self.report.dropped_as_deleted += merged.dropped_as_deleted

    def finish(self) -> None:
        if not self.started:
            return  # nothing written: the dataset is as it was
        r = self.report
        record_run(self.dataset, self.field, {
            **self.record, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "predicted": r.predicted,
            "skipped": r.skipped, "failed": len(r.failures), "cancelled": r.cancelled,
            "kept_reviewed": r.kept_reviewed}, self.shard)


def _decode_and_predict(engine: Engine, path: str):
    """One lane's image: ``(label documents, height, width)``, or the decode error (a model
    error raises, as it does outside the lanes)."""
    image = _decode(path)
    return image if isinstance(image, Exception) else engine.predict_docs([image])[0]


def _decode_and_prepare(engine: Engine, path: str):
    """The model's input for one image (:meth:`Engine.prepare`), or the decode error."""
    image = _decode(path)
    return image if isinstance(image, Exception) else engine.prepare(image)
