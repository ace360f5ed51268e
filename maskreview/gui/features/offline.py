"""Reviewing while the database is unreachable: edits go on from the journal.

The edit session (:class:`~maskreview.core.editing.session.EditSession`) keeps an edit it could
not write journaled and queued, resolved against the documents it last read, so the samples
already open stay editable. This feature shows it: a red status-bar notice with the number of
edits waiting, the open sample redrawn from the session's document (the database cannot be
read), and a probe in a background thread that, once the database answers, has the session
write the queue and says how it went (conflicts with others' changes made meanwhile included).
"""

from __future__ import annotations

import threading
from dataclasses import replace

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel


class OfflineFeature(QObject):
    PROBE_MS = 2000
    _answered = Signal(bool)  # from the probe's thread

    def __init__(self, window, state=None):
        super().__init__(window)
        self.window = window
        self.notice = QLabel()
        self.notice.setObjectName("database_status")
        self.notice.setStyleSheet("QLabel { color: white; background: #b3261e; padding: 1px 6px; }")
        self.notice.hide()
        window.statusBar().addPermanentWidget(self.notice)
        self.timer = QTimer(self)
        self.timer.setInterval(self.PROBE_MS)
        self.timer.timeout.connect(self._probe)
        self._probing = False
        self._waiting: set[str] = set()  # samples edited while the database was unreachable
        self._answered.connect(self._database_answered)
        self._controller = None
        window.dataset_changed.connect(self._attach)  # after editing's handler made window.edits

    @property
    def session(self):
        return self.window.edits.session if self.window.edits is not None else None

    def _attach(self, _dataset=None) -> None:
        edits = self.window.edits
        if edits is None or edits is self._controller:
            return
        self._controller = edits
        self._waiting.clear()
        self.notice.hide()
        self.timer.stop()
        edits.queued.connect(self._queued)

    def _queued(self, sample_ids: list[str]) -> None:
        self._waiting.update(sample_ids)
        count = self.session.queued_count
        self.notice.setText(f"Database unreachable: {count} edit(s) kept in the journal, written when it is back")
        self.notice.show()
        self._show_from_session(sample_ids)
        if not self.timer.isActive():
            self.timer.start()

    def _show_from_session(self, sample_ids: list[str]) -> None:
        """Redraw the open sample from the session's document: the database cannot be read."""
        from maskreview.core.editing.session import version_of
        from maskreview.gui.canvas.overlay import instances_from_detections
        from maskreview.gui.queries import RawDetection, RawDetections

        data = self.window.canvas.data
        if data is None or data.sample_id not in sample_ids:
            return
        doc = self.session.cached_document(data.sample_id)
        if doc is None:
            return
        fields = dict(data.fields)
        for name in fields:
            if isinstance(doc.get(name), dict):
                dets = RawDetections([RawDetection(d) for d in doc[name].get("detections") or []])
                fields[name] = instances_from_detections(name, dets, data.height, data.width)
        shown = replace(data, fields=fields, tags=list(doc.get("tags") or []), version=version_of(doc))
        self.window._show(shown, keep_view=True)  # what show_sample does after reading the database

    def _probe(self) -> None:
        if self._probing:
            return
        self._probing = True

        def ask():
            from maskreview.core.store.health import database_answers

            try:
                answers = database_answers()
            except Exception:
                answers = False
            self._answered.emit(answers)

        threading.Thread(target=ask, name="database-probe", daemon=True).start()

    def _database_answered(self, answers: bool) -> None:
        self._probing = False
        session = self.session
        if not answers or session is None:
            return
        report = session.try_resume()
        if report is None:  # went away again in between
            return
        self.timer.stop()
        self.notice.hide()
        waiting, self._waiting = sorted(self._waiting), set()
        written = report["applied"] + report["already"]
        self.window.statusBar().showMessage(f"Database back: {written} edit(s) from the journal written", 10000)
        if report["conflicts"]:
            self.window.notify(f"{len(report['conflicts'])} sample(s) edited while the database was unreachable were "
                               f"changed meanwhile by someone else ({', '.join(report['conflicts'][:3])}): their "
                               "version is kept; your edits to them were not written", "Edited elsewhere")
        for sid in waiting:
            self.window.refresh_sample(sid)
