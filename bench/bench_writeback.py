"""Saving 1,000 edited samples (new masks) through maskreview's write path vs per-sample save().

Peer: FiftyOne's own way, ``sample.save()`` per sample after changing a mask (the samples are
loaded and the new masks computed before the clock starts). Ours: one batch through
``EditSession.apply_many`` (journal fsync + one ``bulk_write`` sending only the changed labels),
and, for reference, the same edits one op at a time (what autosave does per user action).
Each round uses a fresh dataset (so that every edit is a label's first, snapshot included);
the best of ``--repeat`` rounds is compared for each path (the peer's time varies by half from
round to round on a shared machine). Target: >= 10x faster than per-sample save(), in wall time
and in CPU time (this process + the database's mongod: on a machine shared with other jobs, wall
time mostly measures waiting for a core).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchkit  # noqa: E402  (bench/ is on sys.path when a bench runs as a script)

N, SIZE, PER_SAMPLE = 1000, 256, 3


def _dataset(fo, name: str, n: int):
    rng = np.random.default_rng(0)
    dataset = fo.Dataset(name)
    samples = []
    for i in range(n):
        dets = []
        for _ in range(PER_SAMPLE):
            x, y = (int(v) for v in rng.integers(0, SIZE - 64, 2))
            mask = _blob(rng, 48, 48)
            dets.append(fo.Detection(label="thing", bounding_box=[x / SIZE, y / SIZE, 48 / SIZE, 48 / SIZE], mask=mask))
        samples.append(fo.Sample(filepath=f"/nonexistent/bench/{i}.png", ground_truth=fo.Detections(detections=dets),
                                 metadata=fo.ImageMetadata(width=SIZE, height=SIZE)))
    dataset.add_samples(samples, progress=False)
    return dataset


def _blob(rng, h: int, w: int) -> np.ndarray:
    """An object-like mask: an ellipse with a hole, at a random offset (what edits look like)."""
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h / 2 + rng.uniform(-3, 3), w / 2 + rng.uniform(-3, 3)
    r = ((yy - cy) / (h / 2.2)) ** 2 + ((xx - cx) / (w / 2.2)) ** 2
    return (r <= 1) & (r > 0.1)


def _new_bitmaps(dataset, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for sid in dataset.values("id"):
        bitmap = np.zeros((SIZE, SIZE), bool)
        x, y = (int(v) for v in rng.integers(0, SIZE - 80, 2))
        bitmap[y : y + 60, x : x + 70] = _blob(rng, 60, 70)
        out[sid] = bitmap
    return out


def _round(fo, n: int, r: int, clock, with_single: bool) -> tuple:
    """One round on a fresh dataset: the peer, then ours (first edit of every label, snapshots
    included), then, if asked, ours one op at a time. Returns the three clocks (or None)."""
    from maskreview.core import masks as mk
    from maskreview.core.editing.ops import LabelRef, SetMask
    from maskreview.core.editing.session import EditSession

    name = f"bench-writeback-{os.getpid()}-{r}"
    dataset = _dataset(fo, name, n)
    try:
        # -- peer: per-sample save() -----------------------------------------------------
        new = _new_bitmaps(dataset, 10 * r + 1)
        samples = list(dataset.iter_samples())
        boxes = {sid: mk.bitmap_to_detection(b, "thing") for sid, b in new.items()}
        with clock() as peer:
            for sample in samples:
                det = sample.ground_truth.detections[0]
                det.mask, det.bounding_box = boxes[sample.id].mask, boxes[sample.id].bounding_box
                sample.save()
        del samples, sample  # the app holds the sample on screen, not the peer's thousand

        single = None
        with tempfile.TemporaryDirectory() as journal, EditSession(dataset, journal_root=Path(journal)) as session:
            session.prepare(["ground_truth"])  # once per dataset: creates ground_truth_original
            ids, label_ids = dataset.values(["id", "ground_truth.detections.id"])
            # -- ours, one batch -------------------------------------------------------------
            new = _new_bitmaps(dataset, 10 * r + 2)
            ops = [SetMask(LabelRef(sid, "ground_truth", lids[0]), new[sid]) for sid, lids in zip(ids, label_ids)]
            with clock() as batched:
                session.apply_many(ops)
            if with_single:
                # -- ours, one op at a time ---------------------------------------------------
                new = _new_bitmaps(dataset, 10 * r + 3)
                ops = [SetMask(LabelRef(sid, "ground_truth", lids[1]), new[sid]) for sid, lids in zip(ids, label_ids)]
                with clock() as single:
                    for op in ops:
                        session.apply(op)
                check = dataset[ids[-1]].ground_truth.detections[1]
                assert np.array_equal(mk.detection_to_bitmap(check, SIZE, SIZE), new[ids[-1]]), "write-back lost an edit"
        return peer, batched, single
    finally:
        fo.delete_dataset(name)


class _Best:
    """The fastest of several rounds, by wall and by CPU time separately."""

    def __init__(self, clocks):
        self.wall, self.cpu = min(c.wall for c in clocks), min(c.cpu for c in clocks)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=N, help="samples to edit (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, each on a fresh dataset; best of each path")
    args = parser.parse_args(argv)
    n = args.n
    from maskreview.core import store

    fo = store.connect()
    clock = lambda: benchkit.Clock(benchkit.mongod_pid(fo.config.database_dir))  # noqa: E731
    rounds = [_round(fo, n, r, clock, with_single=r == 0) for r in range(args.repeat)]
    for r, (peer, batched, _) in enumerate(rounds):
        print(f"round {r + 1}: save() {peer.wall:.2f} s wall / {peer.cpu:.2f} s CPU, apply_many {batched.wall:.3f} s wall"
              f" / {batched.cpu:.3f} s CPU: {peer.wall / batched.wall:.1f}x wall, {peer.cpu / batched.cpu:.1f}x CPU")
    peer, batched, single = _Best([r[0] for r in rounds]), _Best([r[1] for r in rounds]), rounds[0][2]
    benchkit.table(("path (best of rounds)", "wall s", "ms/sample", "vs save()", "CPU s", "vs save()"), [
        (label, c.wall, 1000 * c.wall / n, f"{peer.wall / c.wall:.1f}x", c.cpu, f"{peer.cpu / c.cpu:.1f}x")
        for label, c in (("per-sample sample.save() (FiftyOne)", peer), ("EditSession.apply_many (1 batch)", batched),
                         ("EditSession.apply, one op at a time (round 1)", single))])
    print("CPU s = this process + the database's mongod; wall s = elapsed (includes waiting for a core)")
    for unit in ("wall", "CPU"):
        ratio = getattr(peer, unit.lower()) / getattr(batched, unit.lower())
        benchkit.result(f"writeback {n} edited samples vs sample.save() ({unit}, best of {args.repeat})",
                        f"{ratio:.1f}x", ">= 10x", ratio >= 10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
