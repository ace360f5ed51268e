"""The samples next to the one on show, read and decoded ahead on a worker thread.

Browsing to the next (or previous) sample then costs the GUI thread only the canvas's own work:
the database read, the image decode and the mask decode (~10 ms of CPU a step, more at 1080p)
were done while the reviewer looked at the sample before (issue #17's stall row).

What is shown is never older than what reading it at that moment could give, as far as this
window knows: a prefetched sample is used only when the same dataset and fields are open and
nothing this window wrote or was told about (model runs, edits, undo: everything that redraws
the sample's thumbnail, ``SampleListModel.invalidate``) touched the sample since its read began;
and only while it is fresh (:data:`MAX_AGE`), so that another reviewer's change is read as
before when the reviewer has stayed a while. Otherwise the sample is read on the GUI thread as
before. A refresh of the sample on show (``keep_view``) always reads it.
"""

from __future__ import annotations

import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer

MAX_AGE = 5.0  # seconds a prefetched sample may be used after its read began
DELAY_MS = 40  # after a sample shows: let its repaint run before the reads compete for the GIL


@dataclass
class _Ahead:
    key: tuple  # (dataset, label fields, the model's ids list, the sample's thumbnail version)
    started: float
    future: Future


def read_sample(dataset, sample_id: str, label_fields: list[str]):
    """``canvas.load_sample`` for a worker thread: the image decoded here and handed to the
    sample (the canvas's one-image decode cache stays the sample on show's); None when the
    sample is gone or its image does not decode (the GUI thread then reads it and says why)."""
    from maskreview.core.images import read_image
    from maskreview.gui.canvas import build_sample_data
    from maskreview.gui.queries import read_samples

    raw = read_samples(dataset, [sample_id], label_fields).get(sample_id)
    if raw is None:
        return None
    try:
        image = read_image(raw.filepath)
    except Exception:  # noqa: BLE001 - the GUI thread's read gives the message
        return None
    meta = type("Meta", (), {"width": raw.width, "height": raw.height})
    data = build_sample_data(sample_id, raw.filepath, raw.labels, meta, raw.tags, image=image)
    data.version = raw.version
    return data


class SamplePrefetch(QObject):
    """``take(id)`` gives the prefetched sample or None; ``after_show(id)`` reads its neighbours."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sample-prefetch")
        self._ahead: dict[str, _Ahead] = {}
        self._timer = QTimer(self, singleShot=True, interval=DELAY_MS)
        self._timer.timeout.connect(self._prefetch)
        self.hits = self.misses = 0
        self._watching = False  # following the browser's thumbnail invalidations (made after this)
        window.dataset_changed.connect(lambda _ds: self.clear())

    def _key(self, sample_id: str) -> tuple:
        w = self.window
        model = w.browser.model
        return (id(w.dataset), tuple(w.label_fields), id(model.ids), model._versions.get(sample_id, 0))  # noqa: SLF001

    def take(self, sample_id: str):
        """The sample read ahead, if it still is what reading it now would give (module doc)."""
        ahead = self._ahead.pop(sample_id, None)
        if ahead is None or self.window.dataset is None:
            self.misses += 1
            return None
        if ahead.key != self._key(sample_id) or time.monotonic() - ahead.started > MAX_AGE \
                or not ahead.future.done():  # still reading: the GUI thread reads it (no wait on the GIL's turn)
            ahead.future.cancel()
            self.misses += 1
            return None
        try:
            data = ahead.future.result()
        except (CancelledError, Exception):  # noqa: BLE001 - read again on the GUI thread, which reports it
            data = None
        if data is None:
            self.misses += 1
            return None
        self.hits += 1
        return data

    def after_show(self, sample_id: str | None) -> None:
        """``sample_id`` is on show: read the samples before and after it in the browser, soon."""
        if not self._watching:
            self._watching = True
            self.window.browser.model.dataChanged.connect(self._invalidated)
        self._timer.start()

    def _invalidated(self, first, last, _roles=()) -> None:
        """Thumbnails redrawn (a model run's batch, an edit): a neighbour read ahead before its
        write is read again soon, on the worker thread, not on the GUI thread at the next step
        (a model run writes the samples as the reviewer browses them: #17's stall row)."""
        if self._timer.isActive():
            return
        rows = self.window.browser.model.row_of
        for sid, ahead in self._ahead.items():
            row = rows.get(sid)
            if row is not None and first.row() <= row <= last.row() and ahead.key != self._key(sid):
                self._timer.start()
                return

    def _prefetch(self) -> None:
        w = self.window
        if w.dataset is None:
            return
        browser = w.browser
        index = browser.view.currentIndex()
        if not index.isValid():
            return
        row = index.row()
        wanted = [sid for sid in (browser.model.sample_id(row + 1), browser.model.sample_id(row - 1))
                  if sid is not None and sid != w.current_sample_id]
        for sid in list(self._ahead):
            if sid not in wanted:
                self._ahead.pop(sid).future.cancel()
        dataset, fields = w.dataset, list(w.label_fields)
        for sid in wanted:
            ahead = self._ahead.get(sid)
            key = self._key(sid)
            if ahead is not None and ahead.key == key and time.monotonic() - ahead.started < MAX_AGE / 2:
                continue
            self._ahead[sid] = _Ahead(key, time.monotonic(), self._pool.submit(read_sample, dataset, sid, fields))

    def clear(self) -> None:
        for ahead in self._ahead.values():
            ahead.future.cancel()
        self._ahead.clear()

    def close(self) -> None:
        self._timer.stop()
        self.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
