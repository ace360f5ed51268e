"""Qt adapters around core jobs: a Progress that emits signals, a job thread, a status-bar widget.

A core job is any callable ``fn(progress)``. :class:`Job` runs it on a QThread; its
:class:`SignalProgress` turns ``start/advance/finish`` into (throttled) Qt signals, and
``cancel()`` reaches the job through ``progress.check()``. Results and errors come back as
signals on the GUI thread, so the window never waits on a job.
"""

from __future__ import annotations

import logging
import os
import time

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from maskreview.core.fields import RUN_KEY, run_field
from maskreview.core.model.worker_client import WorkerCrashed  # noqa: F401 (for callers)
from maskreview.core.progress import Progress


class _Emitter(QObject):
    updated = Signal(int, int, str, float)  # done, total, label, eta seconds (-1 unknown)
    written = Signal(list)  # sample ids whose labels were just written
    noted = Signal(str)  # a one-line message for the user (Progress.note)


class SignalProgress(Progress):
    """A core ``Progress`` whose updates arrive as Qt signals (at most every ``interval`` s)."""

    def __init__(self, interval: float = 0.05):
        super().__init__()
        self.emitter = _Emitter()
        self.interval = interval
        self._last = 0.0

    def on_update(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval or self.done >= self.total:
            self._last = now
            eta = self.eta_seconds()
            self.emitter.updated.emit(self.done, self.total, self.label, -1.0 if eta is None else eta)

    def on_note(self, text: str) -> None:
        self.emitter.noted.emit(text)


class Job(QThread):
    """Runs ``fn(progress)`` on its own thread; ``succeeded``/``failed`` arrive on the GUI thread."""

    succeeded = Signal(object)
    failed = Signal(str, str)  # message, kind: "cancelled" | "database" | "input" | "error"

    def __init__(self, fn, name: str = "job", parent=None):
        super().__init__(parent)
        self.fn, self.name = fn, name
        self.progress = SignalProgress()

    def run(self) -> None:
        from maskreview.core.errors import CancelledError, DatabaseError, MaskreviewError

        try:
            result = self.fn(self.progress)
        except CancelledError as exc:
            self.failed.emit(str(exc), "cancelled")
        except DatabaseError as exc:
            self.failed.emit(str(exc), "database")
        except MaskreviewError as exc:
            self.failed.emit(str(exc), "input")
        except Exception as exc:  # the app keeps running; the message says what happened
            logging.getLogger(__name__).exception("%s failed", self.name)
            self.failed.emit(f"{self.name} failed: {exc.__class__.__name__}: {exc}", "error")
        else:
            self.succeeded.emit(result)

    def cancel(self) -> None:
        self.progress.cancel()


def format_eta(seconds: float) -> str:
    if seconds < 0:
        return ""
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d} left" if seconds >= 60 else f"{seconds} s left"


class ProgressWidget(QWidget):
    """Status-bar progress: label, bar, ETA and a cancel button, for one job at a time."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(220)
        self.bar.setTextVisible(True)
        self.eta = QLabel()
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Cancel the running job (Esc)")
        for w in (self.label, self.bar, self.eta, self.cancel_button):
            layout.addWidget(w)
        self._running: list[Job] = []  # tracked and not finished, the newest last: the one shown
        self._last: dict = {}  # job -> its last progress update, to show it again
        self.cancel_button.clicked.connect(self.cancel)
        self.hide()

    @property
    def job(self) -> Job | None:
        return self._running[-1] if self._running else None

    def track(self, job: Job) -> None:
        self._running.append(job)
        job.progress.emitter.updated.connect(lambda *args, j=job: self._updated(j, args))
        job.finished.connect(lambda j=job: self._done(j))
        self._show(job)

    def _show(self, job: Job) -> None:
        self.label.setText(job.name)
        if job in self._last:
            self._update(*self._last[job])
        else:
            self.bar.setRange(0, 0)
            self.bar.setFormat("")
            self.eta.setText("starting…")
        self.show()

    def _updated(self, job: Job, args: tuple) -> None:
        self._last[job] = args
        if self.job is job:
            self._update(*args)

    def _update(self, done: int, total: int, label: str, eta: float) -> None:
        self.label.setText(label or (self.job.name if self.job else ""))
        self.bar.setRange(0, total)  # 0..0: a busy bar while the total is unknown (model loading)
        self.bar.setValue(done)
        self.bar.setFormat(f"{done}/{total}")
        self.eta.setText(format_eta(eta))

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.eta.setText("cancelling…")

    def _done(self, job: Job) -> None:
        """``job`` ended: the newest tracked job still running shows (an evaluation's Cancel
        comes back when a model run started during it ends); none: hide."""
        shown = job is self.job
        if job in self._running:
            self._running.remove(job)
        self._last.pop(job, None)
        if not shown:
            return
        if self._running:
            self._show(self._running[-1])
        else:
            self.hide()


def model_worker():
    """The model's process (:class:`~maskreview.core.model.worker_client.WorkerClient`), one per app:
    inference, single-image prediction and the Model panel's captures run there, never here."""
    from maskreview.core.model.worker_client import shared_client

    return shared_client()


def crash_message(error, what: str | None = None) -> str:
    """The window's words for a worker that died (``error``: a ``WorkerCrashed``)."""
    during = f" during {what}" if what else ""
    return (f"The model process {error.how}{during}. It has been restarted, and your edits are kept"
            + (" (predictions already written stay; run the model again to finish the rest)." if what else ".")
            + (f" Its last words: {error.stderr_tail}" if error.stderr_tail else ""))


def run_is_current(dataset, field: str, model: str, settings) -> bool:
    """Whether every sample's ``field`` holds this model's predictions under ``settings``.

    Judged from the run record that inference stores (model, weights checksum, thresholds, run
    key) and each sample's ``<field>_run`` key, without loading torch or the model.
    """
    from dataclasses import asdict

    from maskreview.core.model.provenance import RUNS_INFO_KEY
    from maskreview.core.model.registry import file_sha256, is_url, resolve_model

    record = ((dataset.info or {}).get(RUNS_INFO_KEY) or {}).get(field)
    if not record or not record.get(RUN_KEY):
        return False
    spec = resolve_model(model)
    if not spec.weights or is_url(str(spec.weights)) or record.get("model") != spec.name:
        return False
    if any(record.get(k) != v for k, v in asdict(settings).items() if k != "device"):
        return False
    if record.get("weights_sha256") != file_sha256(spec.weights):
        return False
    from maskreview.core.store import reader

    return not reader.exists(dataset, {run_field(field): {"$ne": record[RUN_KEY]}})


def predict_image_job(path: str, client, model: str, settings, weights: str | None = None) -> Job:
    """A job that predicts one image outside any dataset in the model worker; succeeds with
    ``(image, detections)``."""
    from maskreview.core.images import read_image
    from maskreview.core.model.worker_client import WorkerCrashed

    def fn(progress: SignalProgress):
        from maskreview.core.errors import MaskreviewError
        from maskreview.core.store import fiftyone

        image = read_image(path)  # shown here; the worker reads the file itself
        try:
            found = client.call("predict_image", progress, path=path, model=model, weights=weights,
                                settings=settings)
        except WorkerCrashed as exc:
            raise MaskreviewError(crash_message(exc, None)) from exc
        fo = fiftyone()
        return image, fo.Detections(detections=[fo.Detection(**d) for d in found])

    return Job(fn, "predict image")


def open_source_job(source: str | None, images_dir: str | None = None, fallback_to_demo: bool = False) -> Job:
    """A job that opens a source (or the demo dataset when ``source`` is None).

    With ``fallback_to_demo`` a source that no longer opens (a remembered dataset that was
    deleted) falls back to the demo instead of failing.
    """

    def fn(progress: SignalProgress):
        from maskreview.core.errors import BadInputError

        if source:
            from maskreview.core.sources import open_source

            try:
                return open_source(source, images_dir=images_dir, progress=progress)
            except BadInputError as exc:
                if not fallback_to_demo:
                    raise exc if os.path.basename(str(source).rstrip("/")) in str(exc) else \
                        BadInputError(f"cannot open {source}: {exc}") from exc
        from maskreview.core.demo import ensure_demo_dataset

        return ensure_demo_dataset(progress=progress)

    return Job(fn, f"opening {source or 'the demo dataset'}")
