"""Evaluate the whole set at 100,000 samples / 1,000,000 instances, with progress and Cancel
(issue #17's row "the same: evaluate the whole set — with progress and cancel").

The dataset is ``bench_gui.py``'s big one (``build_big_dataset``: 5 GT + 5 predicted masks a
sample, 5 classes), built once in a child process under ``--root`` and kept. This process runs
``evaluate_and_store`` over the whole set on a worker thread, as the window's Evaluate does, and:

1. runs it to the end under a new key: the longest wait between two progress updates (the
   status bar's bar), the peak RSS of this process (the app: a window adds ~0.5 GB, bench_gui's
   open row), the time;
2. cancels a run under another new key while reading, one in the middle of COCOeval, and
   3. one while its values are being written (over 20,000 of the samples: writing comes last): how long after Cancel the job ended, and that the
   dataset is as it was (no value of the key in any sample, no field, no run);
   3b. a rerun of round 1's key over the whole set (in place, at IoU 0.75: every value changes),
   cancelled once its values are being written: how long after Cancel it ended, and that every
   sample holds round 1's values again (a hash of each sample's values of the key) and the run is
   still registered;
4. evaluates 10,000 of the samples under that cancelled key (what failed once after a cancel at
   100,000: "Failed to update document").

Prints one ``RESULT`` row per figure; "met" only when every round meets it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

GAP_TARGET_S, CANCEL_TARGET_S, RSS_TARGET_GB = 3.0, 1.0, 2.0


def _rss_gb(proc) -> float:
    return proc.memory_info().rss / 2**30


class Recorder:
    """A core Progress recording when each update came, and this process's peak RSS (sampled)."""

    def __init__(self):
        import psutil

        from maskreview.core.progress import Progress

        class _P(Progress):
            def on_update(inner) -> None:  # noqa: N805
                self.times.append((time.monotonic(), inner.done, inner.total))

        self.progress = _P()
        self.times: list[tuple[float, int, int]] = []
        self.peak = 0.0
        self._proc = psutil.Process()
        self.worker: int | None = None  # the evaluating thread's ident (its stack is sampled)
        self.stacks: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_gb(self._proc))
            if self.worker is not None:
                stage = _worker_stage(self.worker)
                if stage is not None:
                    self.stacks.append((time.monotonic(), stage))
            time.sleep(0.1)

    def stages(self, start: float, end: float, top: int = 2) -> str:
        """What the worker was doing between ``start`` and ``end`` (its stack sampled every
        0.1 s: the innermost maskreview function and the library call under it), most seen first."""
        from collections import Counter

        seen = Counter(s for t, s in self.stacks if start <= t <= end)
        total = sum(seen.values())
        return ", ".join(f"{s} {n / total:.0%}" for s, n in seen.most_common(top)) if total else "not sampled"

    def stop(self) -> None:
        self._stop.set()
        self._sampler.join()
        self.peak = max(self.peak, _rss_gb(self._proc))

    def max_gap(self, start: float, end: float, top: int = 3) -> tuple[float, str]:
        """The longest time between two updates (from the start to the end of the job), and
        where the ``top`` longest were: after which update, in which stage (:meth:`stages`)."""
        stamps = [start] + [t for t, _, _ in self.times] + [end]
        gaps = sorted(((b - a, i) for i, (a, b) in enumerate(zip(stamps, stamps[1:]))), reverse=True)
        wheres = []
        for gap, i in gaps[:top]:
            where = f"{gap:.2f} s after update {i} of {len(stamps) - 2}" if i else f"{gap:.2f} s before the first update"
            if 0 < i <= len(self.times):
                where += f" ({self.times[i - 1][1]}/{self.times[i - 1][2]})"
            wheres.append(f"{where}: {self.stages(stamps[i], stamps[i + 1])}")
        return gaps[0][0], "; ".join(wheres)


def _worker_stage(worker: int) -> str | None:
    """:func:`_stage` of thread ``worker`` now (joining the writer: the writer's). The frames are
    let go of before returning: ``sys._current_frames()`` holds this frame too, a cycle that
    would keep the worker's frames, and every table their locals hold, as garbage; made while
    an evaluation pauses the collector, ``gc.freeze`` at its end makes it never collected (each
    round's data was kept to the end of the bench: 6.1 GB at 100,000 samples)."""
    frames = sys._current_frames()
    try:
        frame = frames.get(worker)
        if frame is None:
            return None
        stage = _stage(frame)
        if stage.endswith("_wait_for_tstate_lock"):  # joining the writer: what it does
            writer = next((t.ident for t in threading.enumerate() if t.name == "maskreview-eval-write"), None)
            if writer in frames:
                stage = f"writer: {_stage(frames[writer])}"
        return stage
    finally:
        frames.clear()
        frame = None


_COCOEVAL_STAGES = ("core.evaluation.engine.", "core.evaluation.chunks.")  # :func:`_stage` names in COCOeval


def _stage(frame) -> str:
    """``module.function`` of the innermost maskreview frame, ``< library function`` under it."""
    inner = None
    while frame is not None:
        name = frame.f_code.co_filename
        if "/maskreview/" in name and "/bench/" not in name:
            mod = name.rsplit("/maskreview/", 1)[1].removesuffix(".py").replace("/", ".")
            here = f"{mod}.{frame.f_code.co_name}"
            return here if inner is None else f"{here} < {inner}"
        if inner is None:
            inner = f"{Path(name).stem}.{frame.f_code.co_name}"
        frame = frame.f_back
    return inner or "?"


def _holding(dataset, key: str) -> int:
    from maskreview.core.store import reader

    return reader.collection(dataset).count_documents({"$or": [
        {f"{key}_tp": {"$exists": True}}, {f"ground_truth.detections.{key}": {"$exists": True}},
        {f"predictions.detections.{key}_iou": {"$exists": True}}]})


def _values_hash(dataset, key: str) -> str:
    """A hash of every sample's values under ``key`` (per sample and per label), in id order."""
    import hashlib

    import bson

    from maskreview.core.store import reader

    names = [f"{key}{s}" for s in ("", "_id", "_iou", "_biou")]
    projection = {f"{key}_{n}": 1 for n in ("tp", "fp", "fn")}
    projection.update({f"{f}.detections.{n}": 1 for f in ("ground_truth", "predictions") for n in names})
    h = hashlib.sha1()
    for doc in reader.collection(dataset).find({}, projection).sort("_id"):
        h.update(bson.encode(doc))
    return h.hexdigest()


def _writing(dataset, key: str) -> bool:
    """A sample was written by a run of ``key`` other than the first (its review_rev_by)."""
    from maskreview.core.fields import REV_BY_FIELD
    from maskreview.core.store import reader

    return reader.collection(dataset).find_one(
        {REV_BY_FIELD: {"$regex": f"^evaluation {key} ", "$nin": list(_FIRST_WRITERS)}}, {"_id": 1}) is not None


_FIRST_WRITERS: set = set()


def _every(seconds: float, when):
    """``when`` looked at no more often than every ``seconds`` (a query over every sample)."""
    last = [0.0]

    def check(rec):
        now = time.monotonic()
        if now - last[0] < seconds:
            return False
        last[0] = now
        return when(rec)

    return check


def _schema(dataset) -> list[str]:
    from maskreview.core.fields import REV_BY_FIELD, REV_FIELD

    dataset.reload()
    return sorted(set(dataset.get_field_schema(flat=True)) - {REV_FIELD, REV_BY_FIELD})


def _run(view, key: str, cancel_when=None, **kw) -> dict:
    """``evaluate_and_store`` on a worker thread; ``cancel_when(recorder)`` polled every 50 ms."""
    from maskreview.core.evaluation import evaluate_and_store

    rec = Recorder()
    out: dict = {}

    def work():
        try:
            out["results"] = evaluate_and_store(view, eval_key=key, progress=rec.progress, **kw)
        except BaseException as exc:  # noqa: BLE001  (reported)
            out["error"] = exc

    t0, c0 = time.monotonic(), time.process_time()
    worker = threading.Thread(target=work, name="evaluation")
    worker.start()
    rec.worker = worker.ident
    cancelled_at = None
    while worker.is_alive():
        worker.join(0.05)
        if cancel_when is not None and cancelled_at is None and worker.is_alive() and cancel_when(rec):
            cancelled_at = time.monotonic()
            rec.progress.cancel()
    end = time.monotonic()
    rec.stop()
    gap, where = rec.max_gap(t0, cancelled_at or end)
    out.update(seconds=end - t0, cpu=time.process_time() - c0, gap=gap, gap_where=where, peak=rec.peak,
               latency=None if cancelled_at is None else end - cancelled_at, updates=len(rec.times),
               at=rec.times[-1][1:] if rec.times else (0, 0),
               after_cancel=None if cancelled_at is None else rec.stages(cancelled_at, end),
               profile=rec.stages(t0, end, top=6))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--root", default=os.environ.get("BENCH_EVAL_SCALE_ROOT", "/tmp/maskreview-bench-eval-scale"),
                        help="the databases and the big dataset, kept between runs (built once)")
    parser.add_argument("--rounds", default="1,2a,2b,3,3b,4", help="which rounds (see above), comma-separated")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args(argv)
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    import bench_gui

    uri = os.environ.get("BENCH_DATABASE_URI")  # a mongod already running (FiftyOne's own may not start in time under load)
    if uri:
        os.environ.update(FIFTYONE_DATABASE_URI=uri, MASKREVIEW_DATA_DIR=str(root / "data"),
                          MASKREVIEW_CACHE_DIR=str(root / "cache"))
        from maskreview.core import store

        store.configure()
    else:
        bench_gui._setup(root)
    from maskreview.core.store import connect

    fo = connect()
    name = bench_gui.big_name(args.samples)
    if name not in fo.list_datasets():
        if uri:
            bench_gui.build_big_dataset(root, args.samples)
        else:
            subprocess.run([sys.executable, str(HERE / "bench_gui.py"), "--build-big", str(root), str(args.samples)],
                           check=True, env=os.environ.copy())
    dataset = fo.load_dataset(name)
    if args.build_only:
        return 0
    from maskreview.core.evaluation import runs

    for key in dataset.list_evaluations():  # a kept dataset: as a new one
        runs._delete_run(dataset, key)
    for key in ("eval", "eval_cancel", "eval_cancel_write"):
        runs._unset_values(dataset, key, ("ground_truth", "predictions"))
    print(f"{name}: {len(dataset)} samples; load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = {"gap": [], "latency": [], "peak": [], "clean": [], "again": []}

    def report(label, r):
        lat = "" if r["latency"] is None else f", Cancel honoured {r['latency']:.2f} s after (in {r['after_cancel']})"
        err = f", ended: {type(r['error']).__name__}: {r['error']}" if "error" in r else ""
        print(f"{label}: {r['seconds']:.1f} s wall / {r['cpu']:.1f} s CPU, {r['updates']} updates, longest gap "
              f"{r['gap']:.2f} s, peak RSS {r['peak']:.2f} GB{lat}{err}; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        print(f"   longest gaps: {r['gap_where']}", flush=True)
        print(f"   where the time went (stack samples): {r['profile']}", flush=True)
        rows["gap"].append(r["gap"])
        rows["peak"].append(r["peak"])

    rounds = set(args.rounds.split(","))
    if "1" in rounds:
        r = _run(dataset.view(), "eval")
        report("1 whole set to the end", r)
        rows["again"].append("error" not in r)
        if "results" in r:
            print(f"   mAP {r['results'].summary['mAP']:.4f}, {len(r['results'].pred)} predictions", flush=True)
        del r
    schema = _schema(dataset)
    for label, key, when in [r for r in (
            ("2a Cancel while reading", "eval_cancel", lambda rec: len(rec.times) >= 3),
            # when the worker's sampled stack is in COCOeval (a share of the progress total fell in the
            # reading: the total grows as the stages add their steps)
            ("2b Cancel in COCOeval", "eval_cancel",
             lambda rec: bool(rec.stacks) and rec.stacks[-1][1].startswith(_COCOEVAL_STAGES)),
            ("3 Cancel while writing", "eval_cancel_write",
             _every(0.5, lambda rec: rec.times and rec.times[-1][1] > 0 and _holding(dataset, "eval_cancel_write") > 0)))
            if r[0].split()[0] in rounds]:
        # writing comes after all of COCOeval: round 3 runs on 20,000 of the samples (a few minutes less)
        r = _run(dataset.view() if key != "eval_cancel_write" else dataset.limit(20_000), key, when)
        report(label, r)
        rows["latency"].append(r["latency"] if r["latency"] is not None else float("inf"))
        clean = type(r.get("error")).__name__ == "CancelledError" and _holding(dataset, key) == 0 \
            and key not in dataset.list_evaluations() and _schema(dataset) == schema
        print(f"   dataset as before: {clean}", flush=True)
        rows["clean"].append(clean)
        del r
    if "3b" in rounds and "eval" in dataset.list_evaluations():
        from maskreview.core.fields import REV_BY_FIELD
        from maskreview.core.store import reader

        _FIRST_WRITERS.update(reader.collection(dataset).distinct(REV_BY_FIELD, {REV_BY_FIELD: {"$regex": "^evaluation eval "}}))
        before = _values_hash(dataset, "eval")
        r = _run(dataset.view(), "eval", _every(0.5, lambda rec: rec.times and _writing(dataset, "eval")),
                 iou_thresh=0.75)
        report("3b Cancel while overwriting round 1's key in place", r)
        rows["latency"].append(r["latency"] if r["latency"] is not None else float("inf"))
        clean = type(r.get("error")).__name__ == "CancelledError" and "eval" in dataset.list_evaluations() \
            and _values_hash(dataset, "eval") == before
        print(f"   round 1's values and run intact: {clean}", flush=True)
        rows["clean"].append(clean)
        del r
    if "4" in rounds:
        r = _run(dataset.limit(10_000), "eval_cancel")
        report("4 10,000 of them under the cancelled key", r)
        rows["again"].append("error" not in r and "eval_cancel" in dataset.list_evaluations())
    n = f"{args.samples // 1000}k"

    def yes(ok):
        return "yes" if ok else "NO"

    rows = {k: v or [float("nan")] for k, v in rows.items()}
    print(f"RESULT evaluate all {n}: longest wait between progress updates (every round) | "
          f"{max(rows['gap']):.2f} s | <= {GAP_TARGET_S:.0f} s | {yes(max(rows['gap']) <= GAP_TARGET_S)}")
    print(f"RESULT evaluate all {n}: Cancel honoured after (reading / COCOeval / writing / overwriting) | "
          f"{' / '.join(f'{v:.2f}' for v in rows['latency'])} s | <= {CANCEL_TARGET_S:.0f} s | "
          f"{yes(max(rows['latency']) <= CANCEL_TARGET_S)}")
    print(f"RESULT evaluate all {n}: peak RSS of the process | {max(rows['peak']):.2f} GB | <= {RSS_TARGET_GB:.0f} GB | "
          f"{yes(max(rows['peak']) <= RSS_TARGET_GB)}")
    print(f"RESULT evaluate all {n}: cancelled run leaves the dataset as it was; same key evaluates again | "
          f"{'/'.join(yes(c) for c in rows['clean'])}; {'/'.join(yes(c) for c in rows['again'])} | yes | "
          f"{yes(all(rows['clean']) and all(rows['again']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
