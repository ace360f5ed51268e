"""Writing a model run's output around review work vs FiftyOne's ``set_values`` (which replaces it).

A re-run over 300 samples x 20 predictions, one in ten samples with reviewed labels (a tagged,
a relabelled and a deleted prediction): ours reads each sample's field and its ``_original``
snapshots, keeps the reviewer's labels, leaves out the new predictions matching them
(``core.reviewed.merge``) and writes conditionally on the sample's revision
(``core.inference._Writer``). The peer, ``dataset.set_values(field, ...)``, writes the new
labels over everything (the review work is lost). Best of ``--repeat`` rounds, wall and CPU
(this process + the database's mongod). Target: keeping review work costs no more than
throwing it away (ours / peer <= 1.0).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchkit  # noqa: E402  (bench/ is on sys.path when a bench runs as a script)

N, PER_SAMPLE, SIZE = 300, 20, 320


def _detections(fo, rng, n: int) -> list:
    out = []
    for _ in range(n):
        x, y = (int(v) for v in rng.integers(0, SIZE - 40, 2))
        box = [x / SIZE, y / SIZE, 32 / SIZE, 32 / SIZE]
        out.append(fo.Detection(label=str(rng.choice(["a", "b", "c"])), confidence=float(rng.random()),
                                bounding_box=box, mask=rng.random((32, 32)) > 0.3))
    return out


def _round(fo, r: int, clock) -> tuple:
    from maskreview.core.editing import ops as ed
    from maskreview.core.model.runs import InferenceReport, _Writer
    from maskreview.core.editing.session import EditSession

    rng = np.random.default_rng(r)
    ds = fo.Dataset(f"bench-model-run-write-{r}")
    try:
        ds.add_samples([fo.Sample(filepath=f"/nonexistent/{i}.png", metadata=fo.ImageMetadata(width=SIZE, height=SIZE))
                        for i in range(N)], progress=False)
        ids = ds.values("id")
        first = {sid: _detections(fo, rng, PER_SAMPLE) for sid in ids}
        writer = _Writer(ds, "predictions", "key", {"model": "bench"}, InferenceReport())
        writer.write({sid: ([d.to_mongo() for d in dets], SIZE, SIZE) for sid, dets in first.items()})
        ds.reload()
        with tempfile.TemporaryDirectory() as journal, EditSession(ds, journal_root=Path(journal)) as session:
            ops = []
            for sid in ids[::10]:
                labels = ds[sid].predictions.detections
                refs = [ed.LabelRef(sid, "predictions", d.id) for d in labels[:3]]
                ops += [ed.LabelTags((refs[0],), ("ok",)), ed.Relabel((refs[1],), "z"), ed.DeleteLabels((refs[2],))]
            session.apply_many(ops)
        with clock() as ours:  # the same model's output again, turned into documents as run_inference does
            writer.write({sid: ([d.to_mongo() for d in dets], SIZE, SIZE) for sid, dets in first.items()})
        assert writer.report.kept_reviewed == 2 * len(ids[::10]) and writer.report.dropped_as_deleted == len(ids[::10])
        peer_values = {sid: fo.Detections(detections=_detections(fo, rng, PER_SAMPLE)) for sid in ids}
        with clock() as peer:
            ds.set_values("predictions", peer_values, key_field="id")
        return peer, ours
    finally:
        fo.delete_dataset(ds.name)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from maskreview.core import store

    fo = store.connect()
    clock = lambda: benchkit.Clock(benchkit.mongod_pid(fo.config.database_dir))  # noqa: E731
    rounds = [_round(fo, r, clock) for r in range(args.repeat)]
    peer = min((p for p, _ in rounds), key=lambda c: c.wall)
    ours = min((o for _, o in rounds), key=lambda c: c.wall)
    benchkit.table(("path (best of rounds)", "wall s", "CPU s"), [
        ("dataset.set_values (review work lost)", peer.wall, peer.cpu),
        ("run_inference's writer (review work kept)", ours.wall, ours.cpu)])
    for unit in ("wall", "cpu"):
        ratio = getattr(ours, unit) / getattr(peer, unit)
        benchkit.result(f"model run write {N}x{PER_SAMPLE} keeping review work vs set_values ({unit})",
                        f"{ratio:.2f}x", "<= 1.0x", ratio <= 1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
