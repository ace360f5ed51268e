"""QUndoCommands around core edits, and the controller that turns ops into undoable commands.

One ``QUndoStack`` (the main window's) holds every edit of the app session, across samples,
with no depth limit. An op is applied when the user acts (so a conflict or bad input surfaces
right there, before anything is pushed); the pushed command keeps the exact
:class:`~maskreview.core.editing.ops.Change`, so undo writes its inverse and redo writes it again.

Install in the main window::

    self.edits = EditController(EditSession(dataset), self.undo_stack, self)
    self.edits.changed.connect(lambda ids: [self.refresh_sample(i) for i in ids])
    self.edits.conflict.connect(self._ask_keep_mine_or_theirs)   # see EditController.resolve
    self.edits.failed.connect(lambda msg: QMessageBox.warning(self, "maskreview", msg))
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from maskreview.core.editing.changes import Change
from maskreview.core.editing.ops import Op
from maskreview.core.errors import MaskreviewError
from maskreview.core.editing.session import ConflictError, EditSession


class EditCommand(QUndoCommand):
    """An applied change: ``undo`` writes its inverse, ``redo`` writes it again."""

    def __init__(self, controller: EditController, change: Change):
        super().__init__(change.text)
        self.controller = controller
        self.change = change
        self._first = True  # pushing calls redo(); the change is already written

    def redo(self) -> None:
        if self._first:
            self._first = False
            return
        self.controller._write(self.change, self)

    def undo(self) -> None:
        self.controller._write(self.change.inverse(), self)


class EditController(QObject):
    """Applies ops through an :class:`EditSession` and records them on a ``QUndoStack``."""

    changed = Signal(list)  # sample ids whose labels or tags changed
    written = Signal(object)  # just before ``changed``: the Change written, versions filled in (what shows it updates from its patches)
    queued = Signal(list)  # sample ids changed while the database is unreachable (journaled, not yet written)
    conflict = Signal(object, object)  # ConflictError, the Change that was refused
    failed = Signal(str)  # a one-line message for the user
    # a Change journaled whose database write is still in flight (a dense sample's, written behind:
    # EditSession.write_behind): what can be drawn from its patches alone; ``written`` and
    # ``changed`` (or ``conflict``, ``queued``, ``failed``) follow once it lands
    applying = Signal(object)
    _landed = Signal()  # from the write's thread

    def __init__(self, session: EditSession, stack: QUndoStack | None = None, parent=None, write_behind: bool = True):
        super().__init__(parent)
        self.session = session
        self.stack = stack if stack is not None else QUndoStack(self)
        self.stack.setUndoLimit(0)  # unlimited
        if write_behind:
            self._landed.connect(lambda: self.settle(wait=False))
            session.write_behind(self._landed.emit)

    def settle(self, wait: bool = True) -> None:
        """Finish the write in flight (``wait``: waiting for it) and say what became of it; before
        anything reads the database's copy of a sample an edit may be writing."""
        for landed in self.session.settle(wait):
            change = landed.change
            if landed.queued:
                self.queued.emit(change.sample_ids)
            elif isinstance(landed.error, ConflictError):
                self.conflict.emit(landed.error, change)
            elif landed.error is not None:
                self.failed.emit(f"{change.text}: not written ({type(landed.error).__name__}: {landed.error})")
            else:
                self.written.emit(change)
                self.changed.emit(change.sample_ids)

    def apply(self, op: Op, force: bool = False) -> Change | None:
        """Apply ``op`` now and push it; ``None`` (with a signal) when refused."""
        self.settle()
        try:
            change = self.session.apply(op, force=force)
        except ConflictError as exc:
            self.conflict.emit(exc, op)
            return None
        except MaskreviewError as exc:
            self.failed.emit(str(exc))
            return None
        if not change.empty:
            self.stack.push(EditCommand(self, change))
            self._emit_changed(change)
        return change

    def apply_many(self, ops: list[Op], text: str) -> list[Change]:
        """Several ops as one undo step (a bulk action)."""
        self.settle()
        try:
            changes = self.session.apply_many(ops)
        except ConflictError as exc:
            self.conflict.emit(exc, None)
            return []
        except MaskreviewError as exc:
            self.failed.emit(str(exc))
            return []
        merged = Change(text, [p for c in changes for p in c.patches])
        if not merged.empty:
            self.stack.push(EditCommand(self, merged))
            self._emit_changed(merged)
        return changes

    def _emit_changed(self, change: Change) -> None:
        """``written`` and ``changed``, or ``queued`` while the edits wait for the database (gui/features/offline.py)."""
        if self.session.offline:
            self.queued.emit(change.sample_ids)
            return
        if self.session.writing:  # this change's write (the one before it landed first)
            self.applying.emit(change)
            return
        self.written.emit(change)
        self.changed.emit(change.sample_ids)

    def resolve(self, error: ConflictError, what, keep_mine: bool) -> None:
        """The user's answer to a conflict. Keep mine: apply again over their version. Take
        theirs: reload their version; the undo history no longer describes these samples, so
        it is cleared rather than left to undo over someone else's work."""
        if keep_mine:
            if isinstance(what, Op):
                self.apply(what, force=True)
            elif isinstance(what, Change):
                self._write(what, None, force=True)
        else:
            self.session.refresh(error.sample_ids)
            self.stack.clear()
            self.changed.emit(list(error.sample_ids))

    def _write(self, change: Change, command: EditCommand | None, force: bool = False) -> None:
        self.settle()
        try:
            written = self.session.write(change, force=force)
        except ConflictError as exc:
            self.conflict.emit(exc, change)
            return
        except MaskreviewError as exc:
            self.failed.emit(str(exc))
            return
        self._emit_changed(written)
