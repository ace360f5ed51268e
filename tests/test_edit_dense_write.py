"""An edit in a dense sample (a field of more than ``RESOLVED_LABELS`` labels) is written by its
patch update (the labels it changes), not by sending the whole resolved field again (#17.3); the
database must then hold exactly what the resolver made, edit after edit, undo included."""

from __future__ import annotations

import numpy as np

from maskreview.core.editing import ops as ed
from maskreview.core.editing import session as es
from maskreview.core.fields import original_field
from maskreview.core.store import reader


def _dense(fo, tmp_path, n: int = 260):
    rng = np.random.default_rng(0)
    dets = []
    for k in range(n):
        x, y = (float(v) for v in rng.uniform(0, 0.9, 2))
        dets.append(fo.Detection(label="cell", bounding_box=[x, y, 0.05, 0.05], mask=rng.random((10, 10)) > 0.3))
    ds = fo.Dataset(f"dense-write-{tmp_path.name}")
    ds.add_sample(fo.Sample(filepath=str(tmp_path / "x.png"), metadata=fo.ImageMetadata(width=200, height=200),
                            ground_truth=fo.Detections(detections=dets)))
    return ds


def test_a_dense_sample_is_written_by_patch_and_holds_what_was_resolved(fo, tmp_path, monkeypatch):
    ds = _dense(fo, tmp_path)
    sid = ds.first().id
    ids = [d.id for d in ds.first().ground_truth.detections]
    whole = []
    real = es.sw.resolved_updates
    monkeypatch.setattr(es.sw, "resolved_updates", lambda patches, docs: (whole.extend(patches), real(patches, docs))[1])
    bitmap = np.zeros((200, 200), bool)
    bitmap[40:70, 50:90] = True
    ref = lambda i: ed.LabelRef(sid, "ground_truth", ids[i])  # noqa: E731
    fields = ["ground_truth", original_field("ground_truth")]
    original = reader.by_ids(ds, [sid], fields)[sid]
    with es.EditSession(ds, journal_root=tmp_path / "journal") as session:
        done = []
        for op in (ed.SetMask(ref(3), bitmap), ed.Relabel((ref(7),), "nucleus"), ed.DeleteLabels((ref(11),)),
                   ed.AddInstance(sid, "ground_truth", "debris", bitmap=bitmap)):
            done.append(session.apply(op))
            stored = reader.by_ids(ds, [sid], fields)[sid]
            resolved = session.cached_document(sid)
            for f in fields:
                assert stored.get(f) == resolved.get(f), f
        assert not whole  # every write was the patch's
        for change in reversed(done):
            session.write(change.inverse())
        back = reader.by_ids(ds, [sid], fields)[sid]
        assert back["ground_truth"] == original["ground_truth"]  # every label back, in its place
