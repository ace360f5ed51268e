"""Model runs on the CPU of one machine share its cores.

Each CPU run (``maskreview infer``, a ``--shard`` or a rank of ``--num-gpus`` on the CPU) holds an
entry in ``<cache dir>/cpu-runs`` while it runs. Before each image it counts the live entries of
this machine and runs ``cores // runs`` torch threads (at least one), so a shard that finishes
first hands its cores to the others. Without it, two shards on two cores each run two OpenMP
threads, wait on each other's threads at every parallel region, and together predicted 1.42
img/s against one process's 3.31 (``bench/bench_team.py``, quiet machine).

An entry is named ``<host>-<pid>`` and holds the process's start time: a pid reused since, or an
entry of a process that died without removing it, is not counted (and is removed). Entries of
other machines (a cache dir on a shared home) are left alone.
"""

from __future__ import annotations

import math
import socket
import time
from pathlib import Path

import psutil

from maskreview.core.store import user_cache_dir


def default_folder() -> Path:
    return user_cache_dir() / "cpu-runs"


class CoreShare:
    """``with CoreShare() as share: ... share.rebalance()`` before each image."""

    def __init__(self, folder: Path | None = None, cores: int | None = None, every_s: float = 1.0,
                 fixed: int | None = None):
        """``fixed``: that many threads, whatever else runs (``infer --threads N``): a float sum's
        order, hence a score's last bits, depends on the thread count."""
        self.fixed = fixed
        self.folder = Path(folder) if folder is not None else default_folder()
        self.cores = cores  # default: torch's own thread count (physical cores), as a lone run uses
        self.every_s = every_s
        self.threads: int | None = None
        self._host = socket.gethostname().replace("-", "_")
        self._entry: Path | None = None
        self._checked = -math.inf

    def __enter__(self) -> CoreShare:
        import torch

        if self.fixed:
            torch.set_num_threads(self.fixed)
            self.threads = self.fixed
            return self  # not registered: it takes no share and leaves the others theirs
        if self.cores is None:
            self.cores = torch.get_num_threads()
        self.threads = torch.get_num_threads()
        self.folder.mkdir(parents=True, exist_ok=True)
        me = psutil.Process()
        self._entry = self.folder / f"{self._host}-{me.pid}"
        self._entry.write_text(repr(me.create_time()))
        self.rebalance(force=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._entry is not None:
            self._entry.unlink(missing_ok=True)
            self._entry = None

    def live_runs(self) -> int:
        """CPU runs alive on this machine, this one included."""
        live = 0
        for entry in self.folder.glob(f"{self._host}-*"):
            try:
                pid, started = int(entry.name.rsplit("-", 1)[1]), float(entry.read_text())
            except (ValueError, OSError):
                continue  # being written, or gone meanwhile
            try:
                alive = abs(psutil.Process(pid).create_time() - started) < 0.01
            except psutil.Error:
                alive = False
            if alive:
                live += 1
            else:
                entry.unlink(missing_ok=True)
        return max(live, 1)

    def threads_for(self, runs: int) -> int:
        return max(1, self.cores // max(runs, 1))

    def rebalance(self, force: bool = False) -> int:
        """Set torch's threads for the runs alive now (looked at most every ``every_s``)."""
        now = time.monotonic()
        if not self.fixed and (force or now - self._checked >= self.every_s):
            self._checked = now
            threads = self.threads_for(self.live_runs())
            if threads != self.threads:
                import torch

                torch.set_num_threads(threads)
                self.threads = threads
        return self.threads
