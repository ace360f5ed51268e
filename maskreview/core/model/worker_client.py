"""Talk to the model worker (:mod:`maskreview.core.model.worker`) from a process that never imports torch.

:class:`WorkerClient` starts ``python -m maskreview.core.model.worker`` on first use (in the
PyInstaller bundle ``sys.executable`` is the bundle, whose entry runs ``-m MODULE``), and keeps
it: the model stays loaded between requests. :meth:`WorkerClient.call` blocks its caller (a job
thread) while relaying the worker's progress into a core ``Progress`` and a cancel back;
:meth:`WorkerClient.submit` is the same without waiting, its events delivered to a callback on
the reader thread.

If the worker dies (a segfault, CUDA aborting, ``kill -9``), every pending request fails with
:class:`WorkerCrashed` naming how it ended and the last lines it wrote to stderr, the listeners
in ``on_crash`` are told, and a fresh worker is started at once for the next request. The
database is written only by the worker's own conditional writes, so what it had written stays
and a rerun resumes; the caller's state (the window's edits) is not in the worker at all.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable

from maskreview.core.errors import BadInputError, CancelledError, DatabaseError, MaskreviewError
from maskreview.core.model import worker_io

WORKER_MODULE = "maskreview.core.model.worker"
# The window's worker runs niced: when the window's thread wants a core it gets one at once (the
# event loop does not wait behind the model), and the model has every idle core (the worker then
# uses all cores' torch threads). Not 19: under a busy machine's other work the model would starve.
# Lowering is all it does: never below what the worker has already.
WORKER_NICE = 10
_ERRORS = {"cancelled": CancelledError, "database": DatabaseError, "input": BadInputError}


class WorkerCrashed(MaskreviewError):
    """The worker process ended while requests were pending."""

    def __init__(self, how: str, stderr_tail: str = ""):
        self.how, self.stderr_tail = how, stderr_tail
        super().__init__(f"the model process {how}" + (f" ({stderr_tail})" if stderr_tail else ""))


def lower_priority(pid: int, nice: int) -> None:
    """Make process ``pid`` (0: this one) at least ``nice`` nice; never raises its priority."""
    try:
        if os.getpriority(os.PRIO_PROCESS, pid) < nice:
            os.setpriority(os.PRIO_PROCESS, pid, nice)
    except (OSError, AttributeError):  # gone already, or no priorities here (Windows)
        pass


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if -returncode == signal.SIGSEGV:
            return f"crashed ({name}, a segmentation fault)"
        return f"was killed ({name})"
    return f"exited with status {returncode}"


class Call:
    """One request: its events (queued, or given to ``on_event``), then its result or error."""

    def __init__(self, request_id: int, on_event: Callable[[dict], None] | None):
        self.id, self.on_event = request_id, on_event
        self.proc = None  # the worker process it went to
        self.events: queue.Queue = queue.Queue()
        self.done = threading.Event()
        self.result, self.error = None, None

    def deliver(self, message: dict) -> None:
        event = message["event"]
        if event == "done":
            self.result = message.get("result")
        elif event == "error":
            self.error = _ERRORS.get(message.get("kind"), MaskreviewError)(message.get("message", "failed"))
            self.error.kind = message.get("kind", "error")
        if event in ("done", "error"):
            self.done.set()
        (self.on_event or self.events.put)(message)

    def fail(self, error: Exception) -> None:
        self.error = error
        self.done.set()
        if self.on_event is not None:
            self.on_event({"event": "error", "kind": "crashed", "message": str(error)})
        else:
            self.events.put({"event": "error"})


class WorkerClient:
    def __init__(self, command: list[str] | None = None, env: dict | None = None, nice: int = 0,
                 restart: bool = True):
        self.command = command or [sys.executable, "-m", WORKER_MODULE]
        self.env, self.nice, self.restart = env, nice, restart
        self.on_crash: list[Callable[[WorkerCrashed], None]] = []  # called on the reader thread
        self.crashes = 0
        self._proc: subprocess.Popen | None = None
        self._calls: dict[int, Call] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._stderr_tail: deque[str] = deque(maxlen=6)

    # ------------------------------------------------------------------ the process
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            env = dict(os.environ if self.env is None else self.env)
            if self.nice:
                env["MASKREVIEW_WORKER_NICE"] = str(self.nice)
            proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, bufsize=0, close_fds=True)
            if self.nice:  # now, before its imports (torch, FiftyOne: seconds of CPU); its threads inherit it
                lower_priority(proc.pid, self.nice)
            self._proc = proc
            threading.Thread(target=self._read, args=(proc,), name="model-worker-reader", daemon=True).start()
            threading.Thread(target=self._relay_stderr, args=(proc,), name="model-worker-stderr", daemon=True).start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (it finishes nothing: a running request is cancelled)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.intended_stop = True
        try:
            proc.stdin.close()  # the worker cancels what runs and leaves
            proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def _relay_stderr(self, proc: subprocess.Popen) -> None:
        for line in iter(proc.stderr.readline, b""):
            text = line.decode(errors="replace")
            if text.strip():
                self._stderr_tail.append(text.strip())
            try:
                sys.stderr.write(text)
            except (OSError, ValueError, AttributeError):  # no stderr (a windowed app)
                pass

    def _read(self, proc: subprocess.Popen) -> None:
        fd = proc.stdout.fileno()
        while True:
            try:
                message = worker_io.read_message(fd)
            except (EOFError, OSError):
                break
            call = self._calls.get(message.get("id"))
            if call is None:
                continue
            try:
                call.deliver(message)
            except Exception:  # a listener's bug must not stop the replies to everyone else
                logging.getLogger(__name__).exception("model worker event %s", message.get("event"))
            if call.done.is_set():
                self._calls.pop(call.id, None)
        returncode = proc.wait()
        with self._lock:
            intended = getattr(proc, "intended_stop", False)
            if self._proc is proc:
                self._proc = None
            pending = [c for c in self._calls.values() if c.proc is proc]
            for c in pending:
                self._calls.pop(c.id, None)
        if intended and not pending:
            return
        self.crashes += 1
        tail = "; ".join(list(self._stderr_tail)[-2:])
        error = WorkerCrashed(describe_exit(returncode), tail if returncode and returncode > 0 else "")
        if self.restart and not intended and self._proc is None:  # restarted before anyone hears of it
            try:
                self.start()
            except OSError:
                pass
        for listener in list(self.on_crash):
            try:
                listener(error)
            except Exception:  # a closed window's listener, say
                logging.getLogger(__name__).exception("model worker crash listener")
        for call in pending:
            call.fail(error)

    # ------------------------------------------------------------------ requests
    def submit(self, op: str, on_event: Callable[[dict], None] | None = None, **args) -> Call:
        call = Call(next(self._ids), on_event)
        with self._lock:
            self.start()
            proc = call.proc = self._proc
            self._calls[call.id] = call
        try:
            self._send(proc, {"id": call.id, "op": op, "args": args})
        except OSError:  # it died just now: its reader fails the call
            pass
        return call

    def cancel(self, call: Call) -> None:
        try:
            self._send(self._proc, {"op": "cancel", "id": call.id})
        except (OSError, AttributeError):
            pass

    def _send(self, proc, message) -> None:
        with self._write_lock:
            data = worker_io.encode(message)
            proc.stdin.write(data)
            proc.stdin.flush()

    def call(self, op: str, progress=None, on_event: Callable[[dict], None] | None = None, **args):
        """Run ``op`` in the worker and wait for its result, relaying ``progress`` (and its cancel);
        other events (``written``, ``target``...) go to ``on_event`` on this thread."""
        call = self.submit(op, **args)
        asked_cancel, shown = False, None
        while True:
            try:
                message = call.events.get(timeout=0.1)
            except queue.Empty:
                message = None
            if progress is not None and progress.cancelled and not asked_cancel:
                asked_cancel = True
                self.cancel(call)
            if message is None:
                continue
            event = message.get("event")
            if event in ("done", "error"):
                break
            if event == "progress" and progress is not None:
                if (message["total"], message["label"]) != shown:
                    shown = (message["total"], message["label"])
                    progress.start(message["total"], message["label"])
                progress.done = message["done"]
                progress.on_update()
            elif event == "note" and progress is not None:
                progress.note(message["text"])
            elif on_event is not None:
                on_event(message)
        if call.error is not None:
            raise call.error
        return call.result


_shared: WorkerClient | None = None


def shared_client() -> WorkerClient:
    """The process's one worker (the window's model lives there)."""
    global _shared
    if _shared is None:
        _shared = WorkerClient(nice=int(os.environ.get("MASKREVIEW_WORKER_NICE_LEVEL", str(WORKER_NICE))))
    return _shared
