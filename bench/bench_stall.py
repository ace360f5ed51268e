"""Event-loop stall while the model runs: the real window, the model in its worker process.

A precise 10 ms QTimer on the GUI thread records how late each tick comes while the window
runs the demo model over a dataset in the background and the user browses (next sample every
300 ms, round and round). Each round is one run over the whole set; the first round starts a fresh worker
process (its start, imports and model load are inside the measured time), the next rounds
reuse it (``--overwrite``: all samples again). Before them, the same browsing with no model
running is measured as the reference (what the window's own work costs). Targets (issue #17): p99 <= 16 ms and
max <= 50 ms in every round, the first included. Also checked: the window's process never
imported torch or detectron2. The process is prepared as the app prepares it
(``gui.runtime.prepare_process``: the 1 ms GIL switch interval).

On a shared machine lateness is partly waiting for a core: each round also prints the GUI
thread's CPU time and the load average. ``--why`` samples the GUI thread's Python stack every
2 ms while a tick is overdue and prints where the late time went (``Qt`` = in Qt's own code or
waiting for the GIL/a core, no Python frame of ours).

    python bench/bench_stall.py [--images 24] [--rounds 3] [--browse-seconds 20] [--why]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import benchkit  # noqa: E402

INTERVAL_MS = 10


class Watchdog(threading.Thread):
    """Samples the GUI thread's stack every 2 ms while its timer tick is overdue (``--why``)."""

    def __init__(self, threshold_ms: float = 16):
        super().__init__(name="stall-watchdog", daemon=True)
        self.main = threading.main_thread().ident
        self.threshold = (INTERVAL_MS + threshold_ms) / 1000
        self.last_tick = time.perf_counter()
        self.samples: Counter = Counter()
        self.episodes: dict[float, Counter] = {}  # tick it started from -> where the samples fell
        self.stopped = False

    def run(self) -> None:
        while not self.stopped:
            time.sleep(0.002)
            since = self.last_tick
            if time.perf_counter() - since > self.threshold:
                where = _where(sys._current_frames().get(self.main))
                self.samples[where] += 1
                self.episodes.setdefault(since, Counter())[where] += 1

    def report(self, top: int = 12) -> None:
        total = sum(self.samples.values())
        print(f"where the GUI thread was while a tick was > 16 ms late ({total} samples of 2 ms):")
        for where, n in self.samples.most_common(top):
            print(f"  {100 * n / max(1, total):5.1f}%  {where}")
        longest = sorted(self.episodes.values(), key=lambda c: -sum(c.values()))[:3]
        for i, episode in enumerate(longest):
            print(f"  late episode {i + 1}: ~{2 * sum(episode.values())} ms: " + "; ".join(
                f"{2 * n} ms {where}" for where, n in episode.most_common(3)))


class Schedstat:
    """The GUI thread's CPU time and time waiting for a core (``/proc/.../schedstat``, Linux), so
    that each late tick's lateness splits into running, waiting for a core and the rest (blocked:
    the GIL, a socket, a lock)."""

    def __init__(self):
        self.path = f"/proc/self/task/{threading.get_native_id()}/schedstat"
        self.available = os.path.exists(self.path)
        self.late = [0.0, 0.0, 0.0, 0]  # lateness, running, waiting for a core (ms), ticks
        self.worst = (0.0, 0.0, 0.0)  # the latest tick: lateness, running, waiting for a core
        self._last = self.read()

    def read(self) -> tuple[float, float]:
        if not self.available:
            return 0.0, 0.0
        with open(self.path) as f:
            run, wait, _ = f.read().split()
        return int(run) / 1e6, int(wait) / 1e6

    def tick(self, lateness_ms: float) -> None:
        now = self.read()
        if lateness_ms > 16:
            self.late[0] += lateness_ms
            self.late[1] += min(lateness_ms, now[0] - self._last[0])
            self.late[2] += min(lateness_ms, now[1] - self._last[1])
            self.late[3] += 1
            if lateness_ms > self.worst[0]:
                self.worst = (lateness_ms, now[0] - self._last[0], now[1] - self._last[1])
        self._last = now

    def summary(self) -> str:
        if not self.available or not self.late[3]:
            return "no tick over 16 ms late" if self.available else "no schedstat here"
        late, run, wait, n = self.late
        return (f"{n} ticks over 16 ms late, {late:.0f} ms late in all: the GUI thread ran {min(run, late):.0f} ms of it, "
                f"waited for a core {min(wait, late):.0f} ms, was blocked (GIL, socket, lock) "
                f"{max(0.0, late - run - wait):.0f} ms; the latest tick ({self.worst[0]:.0f} ms late): ran "
                f"{self.worst[1]:.0f} ms, waited for a core {self.worst[2]:.0f} ms")


class HandlerTimes:
    """Wall and CPU time of the GUI-thread handlers a run and browsing call (``--why``)."""

    def __init__(self, window):
        from maskreview.core.editing import session as edit_session
        from maskreview.core.model.provenance import prediction_fields  # noqa: F401
        from maskreview.gui import model_runs

        self.times: dict[str, list[tuple[float, float]]] = {}
        main = threading.main_thread()
        targets = [(window.model_runs, "_written"), (window.model_runs, "refresh_models"),
                   (window.model_runs, "add_field"), (window.model_runs, "_succeeded"),
                   (window, "show_sample"), (window.browser.model, "invalidate"),
                   (edit_session.EditSession, "track"), (model_runs.ModelRuns, "_push")]
        for owner, name in targets:
            original = getattr(owner, name)
            label = f"{type(owner).__name__ if not isinstance(owner, type) else owner.__name__}.{name}"

            def timed(*a, _original=original, _label=label, **k):
                if threading.current_thread() is not main:
                    return _original(*a, **k)
                wall, cpu = time.perf_counter(), time.thread_time()
                try:
                    return _original(*a, **k)
                finally:
                    self.times.setdefault(_label, []).append(
                        ((time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000))

            setattr(owner, name, timed)

    def report(self) -> None:
        print("GUI-thread handlers (calls; wall ms total / max; CPU ms total / max; nested calls counted in each):")
        for label, rows in sorted(self.times.items(), key=lambda kv: -sum(w for w, _ in kv[1])):
            walls, cpus = [w for w, _ in rows], [c for _, c in rows]
            print(f"  {label:34} {len(rows):4d}  {sum(walls):8.0f} / {max(walls):6.1f}  {sum(cpus):8.0f} / {max(cpus):6.1f}")


class EventTimes:
    """Where the GUI thread's CPU goes between events (``--why``): an application event filter
    charges the thread's CPU from one event's dispatch to the next one's to the first (receiver
    class, event type). Qt paints a window's widgets one paint event after another, so a
    browse step's repaint splits into the widgets that painted; idle time costs no CPU."""

    GENERIC = ("QWidget", "QScrollBar", "QLabel", "QListWidget", "QTableWidget", "QTreeWidget", "QTabBar",
               "QToolButton", "QPushButton", "QComboBox", "QSlider", "QCheckBox")

    def __init__(self, app):
        from PySide6.QtCore import QEvent, QObject

        self.slots: dict[tuple[str, str], list[float]] = {}  # -> [calls, CPU ms, worst CPU ms]
        self._last: tuple[str, str] | None = None
        self._cpu = time.thread_time()
        times = self

        class Filter(QObject):
            def eventFilter(self, receiver, event):  # noqa: N802 - Qt's name
                if threading.current_thread() is threading.main_thread():
                    times.charge(receiver, event, QEvent)
                return False

        self.filter = Filter()
        app.installEventFilter(self.filter)

    def _name(self, receiver) -> str:
        name = type(receiver).__name__
        if name in self.GENERIC:
            parent = receiver.parent()
            while parent is not None and type(parent).__name__ in self.GENERIC:
                parent = parent.parent()
            title = parent.windowTitle() if parent is not None and hasattr(parent, "windowTitle") else ""
            name = f"{type(parent).__name__}{'(' + title[:18] + ')' if title else ''}/{name}"
        return name

    def charge(self, receiver, event, QEvent) -> None:  # noqa: N803
        now = time.thread_time()
        if self._last is not None:
            c = (now - self._cpu) * 1000
            row = self.slots.setdefault(self._last, [0, 0.0, 0.0])
            row[0] += 1
            row[1] += c
            row[2] = max(row[2], c)
        try:
            kind = QEvent.Type(event.type()).name
        except ValueError:
            kind = str(int(event.type()))
        self._last = (self._name(receiver), kind)
        self._cpu = time.thread_time()

    def report(self, top: int = 25) -> None:
        print("GUI-thread CPU by event (receiver, event type: calls; CPU ms total / worst, until the next event):")
        for (name, kind), (n, c, worst) in sorted(self.slots.items(), key=lambda kv: -kv[1][1])[:top]:
            print(f"  {name[:52]:52} {kind[:18]:18} {n:6d}  {c:8.0f} / {worst:6.1f}")


def _where(frame) -> str:
    """The innermost frames of ours (maskreview/, bench/) and the innermost frame overall."""
    ours, inner = [], None
    while frame is not None:
        code = frame.f_code
        if inner is None:
            inner = f"{os.path.basename(code.co_filename)}:{code.co_name}"
        if "/maskreview/" in code.co_filename and "site-packages" not in code.co_filename:
            ours.append(f"{code.co_filename.split('/maskreview/')[-1]}:{code.co_name}")
        frame = frame.f_back
    if not ours or ours[0].endswith(":one_round"):
        return "Qt (event loop: painting, Qt's own work, waiting for the GIL or a core)"
    return " < ".join(ours[:3]) + (f"  [{inner}]" if inner and not inner.endswith(ours[0].split(":")[-1]) else "")


def _setup(root: Path) -> None:
    os.environ["FIFTYONE_DATABASE_DIR"] = str(root / "db")
    os.environ.pop("FIFTYONE_DATABASE_URI", None)
    os.environ["MASKREVIEW_DATA_DIR"] = str(root / "data")
    os.environ["MASKREVIEW_CACHE_DIR"] = str(root / "cache")
    os.environ["MASKREVIEW_CONFIG_DIR"] = str(root / "config")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from maskreview.core import store

    store.configure()


def one_round(app, window, overwrite: bool, watchdog: Watchdog | None = None,
              sched: Schedstat | None = None, browse_only: float = 0) -> tuple[list[float], float, float, int]:
    """Tick lateness (ms) during one run over the dataset, its seconds, the GUI thread's CPU
    seconds and the images predicted."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    lateness: list[float] = []
    clock = QElapsedTimer()
    interval = INTERVAL_MS
    timer = QTimer(interval=interval)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    last = [0]

    def tick():
        now = clock.elapsed()
        lateness.append(max(0, now - last[0] - interval))
        last[0] = now
        if sched is not None:
            sched.tick(lateness[-1])
        if watchdog is not None:
            watchdog.last_tick = time.perf_counter()

    timer.timeout.connect(tick)
    loop = QEventLoop()
    stepper = QTimer(interval=300)
    def browse():  # browse while it runs, as a reviewer would; from the last sample back to the first
        ids = window.browser.visible_ids()
        if ids and window.browser.current_id() == ids[-1]:
            window.do_first_sample()
        else:
            window.do_next_sample()

    stepper.timeout.connect(browse)
    watcher = QTimer(interval=50)
    clock.start()
    timer.start()
    start, cpu = time.perf_counter(), time.thread_time()
    if browse_only:  # the reference: the same browsing with no model running
        job = None
        watcher.timeout.connect(lambda: loop.quit() if time.perf_counter() - start >= browse_only else None)
    else:
        job = window.run_inference("dataset", overwrite=overwrite)
        watcher.timeout.connect(lambda: loop.quit() if window.inference is None and not job.isRunning() else None)
    stepper.start()
    watcher.start()
    loop.exec()
    seconds, cpu = time.perf_counter() - start, time.thread_time() - cpu
    for t in (timer, stepper, watcher):
        t.stop()
    outcome = window.model_runs.last_outcome if job is not None else None
    predicted = outcome.report.predicted if outcome is not None and outcome.report is not None else 0
    return lateness[1:], seconds, cpu, predicted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--browse-seconds", type=float, default=20,
                        help="first, browsing this long with no model running (the reference)")
    parser.add_argument("--why", action="store_true", help="sample the GUI thread's stack while it is late")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="maskreview-bench-stall-"))
    # registered before FiftyOne (its mongod's stop runs first, at exit); a failed or terminated
    # run removes its ~300 MB folder too (SIGTERM becomes SystemExit, so atexit runs)
    atexit.register(shutil.rmtree, root, True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _setup(root)
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from maskreview.core.demo import write_demo_dataset
    from maskreview.core.sources import open_source
    from maskreview.gui.main_window import MainWindow
    from maskreview.gui.runtime import prepare_process
    from maskreview.gui.settings import Settings

    prepare_process()  # as the app does (gui.app.create_app): the GIL switch interval among others
    app = QApplication.instance() or QApplication([])
    dataset = open_source(write_demo_dataset(root / "stall", n=args.images, seed=3))
    window = MainWindow(Settings(root / "stall.ini"))
    atexit.register(window.model_worker.close)  # runs before the folder goes, whatever failed
    window.model_runs.choose("demo")
    window.show()
    window.set_dataset(dataset)
    load = os.getloadavg()
    watchdog = Watchdog() if args.why else None
    handlers = HandlerTimes(window) if args.why else None
    events = EventTimes(app) if args.why else None
    if watchdog is not None:
        watchdog.start()
    worst_p99, worst_max = 0.0, 0.0
    sched = Schedstat()
    lat, seconds, cpu, _ = one_round(app, window, overwrite=False, sched=sched, browse_only=args.browse_seconds)
    a = np.array(lat or [0.0])
    reads = window.prefetch  # the next sample read ahead on a thread (gui/sample_prefetch.py)
    print(f"browsing alone (no model, the reference), {seconds:.0f} s: lateness p50 {np.percentile(a, 50):.1f} ms, "
          f"p99 {np.percentile(a, 99):.1f} ms, max {a.max():.0f} ms over {len(a)} ticks; GUI thread CPU {cpu:.2f} s; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"  {sched.summary()}; samples read ahead {reads.hits}, read on the GUI thread {reads.misses}", flush=True)
    for r in range(args.rounds):
        reads.hits = reads.misses = 0
        sched = Schedstat()
        lat, seconds, cpu, predicted = one_round(app, window, overwrite=True, watchdog=watchdog, sched=sched)
        a = np.array(lat or [0.0])
        p99, mx = float(np.percentile(a, 99)), float(a.max())
        worst_p99, worst_max = max(worst_p99, p99), max(worst_max, mx)
        print(f"round {r + 1}{' (fresh worker: start, imports, model load)' if r == 0 else ''}: {predicted} images in "
              f"{seconds:.1f} s; lateness p50 {np.percentile(a, 50):.1f} ms, p99 {p99:.1f} ms, max {mx:.0f} ms over "
              f"{len(a)} ticks; GUI thread CPU {cpu:.2f} s; load {os.getloadavg()[0]:.2f}", flush=True)
        print(f"  {sched.summary()}; samples read ahead {reads.hits}, read on the GUI thread {reads.misses}", flush=True)
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    if watchdog is not None:
        watchdog.stopped = True
        watchdog.report()
        handlers.report()
        events.report()
    torch_free = "torch" not in sys.modules and "detectron2" not in sys.modules
    result = benchkit.result
    result("stall while the model runs, p99 (worst round, first included)", f"{worst_p99:.1f} ms", "<= 16 ms",
           worst_p99 <= 16)
    result("stall while the model runs, max (worst round, first included)", f"{worst_max:.0f} ms", "<= 50 ms",
           worst_max <= 50)
    result("window process without torch/detectron2", str(torch_free), "True", torch_free)
    window.close()
    window.model_worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
