"""One progress + cancel interface for every long job (import, inference, evaluation, export...).

A core function takes a ``Progress`` and calls ``start``/``advance``/``finish``; it checks
``cancelled`` between units of work and raises :class:`CancelledError` through ``check``.
The CLI passes :class:`TerminalProgress`; the GUI passes an adapter that emits Qt signals.
"""

from __future__ import annotations

import sys
import threading
import time

from maskreview.core.errors import CancelledError


class Progress:
    """Base class; also a silent progress that can still be cancelled from another thread."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self.total = 0
        self.done = 0
        self.label = ""
        self.notes: list[str] = []
        self.started_at = time.monotonic()

    # -- called by the job ---------------------------------------------------------------
    def start(self, total: int, label: str = "") -> None:
        self.total, self.done, self.label = int(total), 0, label
        self.started_at = time.monotonic()
        self.on_update()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.on_update()

    def finish(self) -> None:
        self.on_finish()

    def note(self, text: str) -> None:
        """Tell the user something worth one line (a skipped file, an import started again)."""
        self.notes.append(text)
        self.on_note(text)

    def check(self) -> None:
        """Raise :class:`CancelledError` if someone asked to cancel."""
        if self._cancel.is_set():
            raise CancelledError(f"{self.label or 'job'} cancelled after {self.done} of {self.total}")

    # -- called by whoever drives the job ------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def eta_seconds(self) -> float | None:
        if self.done <= 0 or self.total <= 0:
            return None
        elapsed = time.monotonic() - self.started_at
        return elapsed / self.done * max(self.total - self.done, 0)

    # -- hooks for front ends ------------------------------------------------------------
    def on_update(self) -> None:  # pragma: no cover - silent by default
        pass

    def on_finish(self) -> None:  # pragma: no cover - silent by default
        pass

    def on_note(self, text: str) -> None:  # pragma: no cover - kept in ``notes`` by default
        pass


class TerminalProgress(Progress):
    """A progress bar on stderr (tqdm), shown only when stderr is a terminal or forced."""

    def __init__(self, enabled: bool | None = None) -> None:
        super().__init__()
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar = None

    def start(self, total: int, label: str = "") -> None:
        self._close()
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit="it", file=sys.stderr, leave=False)
        super().start(total, label)

    def on_update(self) -> None:
        if self._bar is not None:
            self._bar.n = self.done
            self._bar.refresh()

    def on_finish(self) -> None:
        self._close()

    def on_note(self, text: str) -> None:
        print(f"maskreview: {text}", file=sys.stderr, flush=True)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
