"""Writing an edit behind: its database write on a worker thread, once its journal line is on disk.

An edit whose journal line is fsynced cannot be lost: a crash of the app before the database has
it is replayed from the journal, a database that does not answer keeps it queued there
(:mod:`maskreview.core.editing.session`). So the caller need not wait for mongod's own durable
acknowledgement, which for a dense sample (a ~1 MB document rewritten, then mongod's journal
committed) is 5–30 ms, or more when a checkpoint is running. One write is in flight at a time;
what follows it (the journal's mark, versions, conflicts) is finished on the caller's thread
(:meth:`EditSession.settle`), before anything else the session does.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from maskreview.core.editing.changes import Change, Version


@dataclass
class InFlight:
    """A write handed to the worker: what finishing it needs."""

    seqs: list[int]  # its journal entries
    chain: dict[str, Version]  # each sample's version after it
    ids: list[str]  # the samples of its patches, in order
    live: list[Change]
    expected: int  # updates that must each modify a sample
    future: Future | None = None


@dataclass(frozen=True)
class Landed:
    """What became of a write made behind: written (``error`` None, not ``queued``), ``queued``
    (the database did not answer: the edit waits in the journal), or ``error`` (a
    ``ConflictError``: someone else wrote the sample first, nothing of it was written; or the
    write's own exception)."""

    change: Change  # its changes' patches as one
    error: Exception | None = None
    queued: bool = False


class WriteBehind:
    """One worker thread for the writes; ``landed`` is called from it when a write has its answer."""

    def __init__(self, landed: Callable[[], None]):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="edit-write-behind")
        self._landed = landed
        self.in_flight: InFlight | None = None
        self.outcomes: list[Landed] = []  # finished, not yet taken (EditSession.settle)

    def start(self, flight: InFlight, write: Callable[[], object]) -> None:
        flight.future = self._pool.submit(write)
        self.in_flight = flight
        flight.future.add_done_callback(lambda _f: self._landed())

    def take(self, wait: bool) -> InFlight | None:
        """The write in flight once it has its answer (``wait``: waiting for it; else None while
        it has none), no longer in flight."""
        flight = self.in_flight
        if flight is None or not (wait or flight.future.done()):
            return None
        flight.future.exception()  # waits; the answer itself is read by the caller
        self.in_flight = None
        return flight

    def drain(self) -> list[Landed]:
        out, self.outcomes = self.outcomes, []
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True)
