"""The model worker: a long-lived process that holds the loaded model, so the window never imports torch.

    python -m maskreview.core.model.worker

Started by :class:`~maskreview.core.model.worker_client.WorkerClient` (the bundle's entry runs
``-m MODULE`` the same way). Requests arrive on stdin and replies leave on stdout as
:mod:`~maskreview.core.model.worker_io` messages; anything else that prints goes to stderr.
One request runs at a time, in order; ``{"op": "cancel", "id": N}`` reaches a running request
through its ``Progress``. Each request gets events ``progress``/``note``/``written`` and ends
with ``done`` (its result) or ``error`` (kind: cancelled, database, input, error).

Requests (``op``: arguments):

- ``run``: dataset, ids (None: all), model, weights, settings, field, overwrite, only_missing,
  trust_checkpoint. Loads the model (kept for the next request), picks and checks the field,
  snapshots it, runs :func:`~maskreview.core.model.runs.run_inference` (which writes to the
  database itself: reviewer work kept, provenance recorded, resumable), snapshots it again.
- ``predict_image``: path and the model arguments; the detections as plain dicts and arrays.
- ``internals``: path, the model arguments, tab and its controls: the model panel's picture(s)
  (:mod:`~maskreview.core.model.internals_panel`) and a summary of the capture (cached per image).
- ``assist_mask`` / ``assist_warm``: box -> mask through the ROI heads (:mod:`~maskreview.core.model.assist`).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import astuple

from maskreview.core.model import field_snapshot
from maskreview.core.errors import BadInputError, CancelledError, DatabaseError, MaskreviewError
from maskreview.core.images import read_image
from maskreview.core.model import autorun, internals, internals_panel, provenance, worker_io
from maskreview.core.model.assist import propose_mask, warm
from maskreview.core.model.engine import Engine
from maskreview.core.model.runs import cpu_lanes, run_inference
from maskreview.core.model.safe_loading import UntrustedCheckpointError
from maskreview.core.model.worker_client import lower_priority
from maskreview.core.progress import Progress
from maskreview.core.startup import quiet_library_warnings
from maskreview.core.store import connect, lost_database

CAPTURES_KEPT = 6
LOW_PRIORITY = 10  # niced at least this much, the model uses every core
EXIT_GRACE_S = 10.0  # how long a request may run on once the window is gone


class Channel:
    """The reply pipe: one writer at a time."""

    def __init__(self, fd: int):
        self.fd, self.lock = fd, threading.Lock()

    def send(self, **message) -> None:
        with self.lock:
            worker_io.write_message(self.fd, message)


class RequestProgress(Progress):
    """Progress of one request, sent as ``progress``/``note`` events (at most every 0.1 s)."""

    def __init__(self, channel: Channel, request_id: int):
        super().__init__()
        self.channel, self.request_id, self._last = channel, request_id, 0.0

    def on_update(self) -> None:
        now = time.monotonic()
        if now - self._last >= 0.1 or self.done >= self.total:
            self._last = now
            self.channel.send(id=self.request_id, event="progress", done=self.done, total=self.total,
                              label=self.label)

    def on_note(self, text: str) -> None:
        self.channel.send(id=self.request_id, event="note", text=text)


class Worker:
    def __init__(self, channel: Channel):
        self.channel = channel
        self._engine_key, self._engine = None, None
        self._captures: OrderedDict = OrderedDict()  # (path, run key) -> (capture, image)
        self._last_image = None  # (path, RGB array) of the image the last request read

    # ------------------------------------------------------------------ the model
    def engine(self, model: str, weights, settings, trust_checkpoint: bool = False, progress=None):

        key = (model, astuple(settings), weights, trust_checkpoint)
        if self._engine is None or self._engine_key != key:
            import torch

            # every core: the worker runs niced (worker_client.WORKER_NICE), so the window's thread
            # still gets a core whenever it wants one; niced less, one core stays free for the window
            cores = os.cpu_count() or 2
            torch.set_num_threads(cores if _niceness() >= LOW_PRIORITY else max(1, cores - 1))
            self._engine = None  # the old model's memory goes before the new one loads
            self._engine = Engine(model, weights=weights, settings=settings, trust_checkpoint=trust_checkpoint,
                                  progress=progress)
            self._engine_key = key
        return self._engine

    # ------------------------------------------------------------------ requests
    def run(self, progress, dataset, ids, model, weights, settings, field=None, overwrite=False,
            only_missing=False, trust_checkpoint=False, remember=False):
        """``remember``: a finished run remembers its model for the dataset (``autorun.remember_model``,
        a dataset save: here, not on the window's thread; the window then finds it stored)."""
        fo = connect()
        ds = fo.load_dataset(dataset)
        ds.reload()
        view = ds.select(ids, ordered=True) if ids is not None else ds.view()
        progress.start(0, f"loading {model}")
        try:
            engine = self.engine(model, weights, settings, trust_checkpoint, progress)
        except MaskreviewError as exc:
            return {"status": "load_failure", "message": str(exc),
                    "untrusted": isinstance(exc, UntrustedCheckpointError)}
        target = field or provenance.propose_field(ds, engine)
        try:
            provenance.check_field_for(ds, target, engine)
        except provenance.FieldTakenError as exc:
            return {"status": "field_taken", "field": exc.field, "free_field": exc.free_field, "holder": exc.holder}
        todo = view.values("id") if overwrite else autorun.missing_sample_ids(view, target, engine.run_key)
        if not todo:
            return {"status": "current", "field": target}
        self.channel.send(id=progress.request_id, event="target", field=target)
        before = field_snapshot.snapshot_field(ds, target, todo)
        report, error = None, None
        try:
            # one write (and one event) per half second, not per image
            report = run_inference(ds.select(todo, ordered=True), engine, target, progress, overwrite=overwrite,
                                   write_every=64, write_seconds=0.5, lanes=cpu_lanes(engine),
                                   on_written=lambda written: self.channel.send(
                                       id=progress.request_id, event="written", ids=list(written)))
        except BaseException as exc:  # a run stopped halfway is undoable too: its snapshots go back first
            error = exc
        after = field_snapshot.snapshot_field(ds, target, todo)
        self.channel.send(id=progress.request_id, event="snapshots", field=target, before=before, after=after)
        if error is not None:
            raise error
        if remember:
            try:
                autorun.remember_model(ds, autorun.ModelChoice(model, weights, settings, field or target))
            except MaskreviewError:  # the window's own remember after the run says what is wrong
                pass
        return {"status": "done", "field": target, "report": report, "count": len(todo)}

    def predict_image(self, progress, path, model, weights, settings, trust_checkpoint=False):
        progress.start(1, f"predicting {os.path.basename(path)}")
        image = read_image(path)
        engine = self.engine(model, weights, settings, trust_checkpoint, progress)
        progress.check()
        detections = engine.predict(image)
        progress.advance()
        return [{"label": d.label, "confidence": d.confidence, "bounding_box": list(d.bounding_box),
                 **({"mask": d.mask} if d.mask is not None else {})} for d in detections.detections]

    def internals(self, progress, path, model, weights, settings, tab, controls, trust_checkpoint=False,
                  gt_masks=None):
        engine = self.engine(model, weights, settings, trust_checkpoint, progress)
        key = (path, engine.run_key)
        computed = key not in self._captures
        if computed:
            progress.start(1, "model internals")
            image = self._image(path)
            self._captures[key] = (internals.capture(engine, image), image)
            while len(self._captures) > CAPTURES_KEPT:
                self._captures.popitem(last=False)
        self._captures.move_to_end(key)
        cap, image = self._captures[key]
        views = internals_panel.render(cap, image, tab, controls, classes=engine.classes,
                                       gt_masks=internals_panel.unpack_masks(gt_masks))
        return {"summary": internals_panel.summary(cap), "views": views, "computed": computed,
                "classes": list(engine.classes)}

    def assist_mask(self, progress, path, model, weights, settings, box, label=None, kind="box",
                    trust_checkpoint=False):
        """Box -> mask through the model's ROI heads (:func:`maskreview.core.model.assist.propose_mask`)."""
        engine = self.engine(model, weights, settings, trust_checkpoint, progress)
        return propose_mask(engine, self._image(path), box, label, image_key=path, kind=kind)

    def assist_warm(self, progress, path, model, weights, settings, trust_checkpoint=False):
        """An image's features ahead of the reviewer's first box."""
        warm(self.engine(model, weights, settings, trust_checkpoint, progress), self._image(path), path)
        return True

    def _image(self, path: str):
        if self._last_image is None or self._last_image[0] != path:
            self._last_image = (path, read_image(path))
        return self._last_image[1]

    def preload(self, progress):
        """Import torch and detectron2 now (the first run then starts at once)."""
        import detectron2.modeling  # noqa: F401
        import torch  # noqa: F401

        return True

    def ping(self, progress):
        return os.getpid()


def _niceness() -> int:
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (OSError, AttributeError):  # no priorities here (Windows)
        return 0


def _kind(exc: BaseException) -> str:
    if isinstance(exc, CancelledError):
        return "cancelled"
    if isinstance(exc, DatabaseError) or lost_database(exc) is not None:
        return "database"
    if isinstance(exc, (BadInputError, MaskreviewError)):
        return "input"
    return "error"


def serve(in_fd: int, channel: Channel) -> None:
    worker = Worker(channel)
    requests: queue.Queue = queue.Queue()
    running: dict[int, RequestProgress] = {}
    cancelled: set[int] = set()
    lock = threading.Lock()
    left: list[bool] = []

    def _leave():
        with lock:
            if left:
                return
            left.append(True)
            for p in running.values():
                p.cancel()
        requests.put(None)
        # a request that does not reach its next cancel check soon (a long forward pass on a busy
        # machine) must not keep an orphan running: what it had written stays, a rerun resumes
        timer = threading.Timer(EXIT_GRACE_S, os._exit, (0,))
        timer.daemon = True  # a request that ends in time lets the worker leave at once
        timer.start()

    def watch_parent():  # the pipe may outlive the window when a child of ours inherited it
        parent = os.getppid()
        while os.getppid() == parent:
            time.sleep(1.0)
        _leave()

    threading.Thread(target=watch_parent, name="parent", daemon=True).start()

    def listen():
        while True:
            try:
                message = worker_io.read_message(in_fd, safe=False)
            except EOFError:  # the window is gone: stop what runs and leave
                _leave()
                return
            if message.get("op") == "cancel":
                with lock:
                    cancelled.add(message["id"])
                    if message["id"] in running:
                        running[message["id"]].cancel()
            elif message.get("op") == "quit":
                requests.put(None)
            else:
                requests.put(message)

    threading.Thread(target=listen, name="requests", daemon=True).start()
    while (message := requests.get()) is not None:
        rid = message["id"]
        progress = RequestProgress(channel, rid)
        with lock:
            running[rid] = progress
            if rid in cancelled:
                progress.cancel()
        try:
            progress.check()
            handler = getattr(worker, message["op"])
            result = handler(progress, **message.get("args", {}))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the window
            if _kind(exc) == "error":
                traceback.print_exc()
            message_text = str(exc) if _kind(exc) != "error" else f"{type(exc).__name__}: {exc}"
            channel.send(id=rid, event="error", kind=_kind(exc), message=message_text)
        else:
            channel.send(id=rid, event="done", result=result)
        finally:
            with lock:
                running.pop(rid, None)
                cancelled.discard(rid)


def main() -> int:
    # only our messages may reach the reply pipe: stdout becomes stderr for everything else
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    in_fd = os.dup(0)  # stdin becomes /dev/null: forked data loaders close sys.stdin
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    if os.environ.get("MASKREVIEW_WORKER_NICE"):  # the window's thread comes first for the CPU
        lower_priority(0, int(os.environ["MASKREVIEW_WORKER_NICE"]))  # the client set it already, if it could
    quiet_library_warnings()  # torch's and detectron2's notices about themselves are not the user's
    channel = Channel(out_fd)
    channel.send(id=0, event="ready", pid=os.getpid())
    serve(in_fd, channel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
