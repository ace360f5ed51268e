"""What every bench prints: a table of timed paths and ``RESULT`` lines (collected by run_all.py);
and a clock that counts CPU time too, for machines where other jobs compete for the cores."""

from __future__ import annotations

import os
import time


def table(headers: tuple[str, ...], rows: list[tuple], first_width: int = 44) -> None:
    """Rows of (label, numbers...) under right-aligned headers; floats with 2 decimals."""
    print(f"{headers[0]:<{first_width}}" + "".join(f"{h:>12}" for h in headers[1:]))
    for label, *values in rows:
        cells = "".join(f"{v:>12.2f}" if isinstance(v, float) else f"{v!s:>12}" for v in values)
        print(f"{label:<{first_width}}{cells}")


def result(name: str, value: str, target: str, met: bool) -> None:
    print(f"RESULT {name} | {value} | {target} | {'yes' if met else 'no'}")


def thread_times(pid: int) -> dict[int, tuple[float, float]]:
    """Per thread of process ``pid``: ``(CPU seconds from /proc/<pid>/task/<tid>/schedstat (ns),
    the same from its stat's clock ticks)``; empty where there are no such files (not Linux, or
    the process is gone)."""
    out = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    tick = os.sysconf("SC_CLK_TCK")
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ran = int(f.read().split()[0]) / 1e9
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = ran, (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return out


def mongod_pid(database_dir: str | os.PathLike | None = None) -> int | None:
    """The mongod serving ``database_dir`` (or the only one running), to count its CPU time."""
    import psutil

    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if proc.info.get("name") == "mongod" or (cmd and os.path.basename(cmd[0]) == "mongod"):
            if database_dir is None or str(database_dir) in cmd:
                found.append(proc.pid)
    return found[0] if len(found) == 1 else None


class Clock:
    """Wall time and CPU time: this process, its child processes (evaluation workers) and the
    database's mongod (when it is local).

    On a machine shared with other jobs, wall time mostly measures waiting for a core; CPU time
    is what the same work costs on an idle machine. ``cpu_times`` counts the other processes' CPU
    in clock ticks of 10 ms, as much as a third of mongod's part of a 0.1 s clock (and the worst
    of several rounds picks up that error), so where Linux has ``schedstat`` each thread alive at
    both ends (or started inside) is counted from it, in ns, and only the rest of the process's
    ticks (threads that ended inside the clock: a model worker's per-run threads) in ticks.
    """

    def __init__(self, mongod: int | None = None):
        self._mongod = mongod

    def _cpu(self) -> dict[int, tuple[float, dict]]:
        """Per process: its CPU seconds in ticks, and :func:`thread_times`."""
        import psutil

        procs = psutil.Process().children(recursive=True)
        if self._mongod and all(p.pid != self._mongod for p in procs):
            procs.append(psutil.Process(self._mongod))
        out = {}
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            out[proc.pid] = t.user + t.system, thread_times(proc.pid)
        return out

    def __enter__(self) -> Clock:
        self._start = time.perf_counter(), time.process_time(), self._cpu()
        return self

    def __exit__(self, *exc) -> None:
        wall, own, others = time.perf_counter(), time.process_time(), self._cpu()
        self.wall = wall - self._start[0]
        self.cpu = own - self._start[1]
        for pid, (ticks, threads) in others.items():
            ticks0, threads0 = self._start[2].get(pid, (0.0, {}))
            if not threads:
                self.cpu += ticks - ticks0
                continue
            precise = sum(ran - threads0.get(tid, (0.0, 0.0))[0] for tid, (ran, _) in threads.items())
            in_ticks = sum(t - threads0.get(tid, (0.0, 0.0))[1] for tid, (_, t) in threads.items())
            # the process's ticks that its live threads do not account for: threads that ended meanwhile
            self.cpu += precise + max(0.0, (ticks - ticks0) - in_ticks)
