"""A reviewed dataset for the FiftyOne App tests: demo scenes, synthetic predictions, every kind
of edit made through maskreview's EditSession, and an evaluation stored under ``eval``."""

from __future__ import annotations

import numpy as np


def reviewed_dataset(demo_coco, name: str):
    """Returns (dataset, what was done: {"sample": id, "added": label id, ...})."""
    from maskreview.core.editing import ops as ed
    from maskreview.core.evaluation import evaluate_and_store
    from maskreview.core.evaluation.synthetic import write_perturbed_predictions
    from maskreview.core.sources import open_source
    from maskreview.core.editing.session import EditSession

    dataset = open_source(str(demo_coco), name=name)
    write_perturbed_predictions(dataset.view())
    first, second = dataset.head(2)
    sid, sid2 = first.id, second.id
    gt, pred = first.ground_truth.detections, first.predictions.detections
    h, w = first.metadata.height, first.metadata.width
    bitmap = np.zeros((h, w), bool)
    bitmap[10:40, 20:60] = True
    with EditSession(dataset) as session:
        session.apply(ed.SampleTags((sid, sid2), ("reviewed",)))
        session.apply(ed.SampleTags((sid2,), ("hard",)))
        session.apply(ed.Relabel((ed.LabelRef(sid, "ground_truth", gt[0].id),), "square"))
        session.apply(ed.SetMask(ed.LabelRef(sid, "ground_truth", gt[1].id), bitmap))
        session.apply(ed.LabelTags((ed.LabelRef(sid, "predictions", pred[0].id),), ("wrong",)))
        session.apply(ed.DeleteLabels((ed.LabelRef(sid, "predictions", pred[1].id),)))
        session.apply(ed.Promote(ed.LabelRef(sid, "predictions", pred[2].id)))
        added = ed.AddInstance(sid, "ground_truth", "circle", bitmap)
        session.apply(added)
    evaluate_and_store(dataset.view(), "ground_truth", "predictions", eval_key="eval")
    dataset.reload()
    return dataset, {"sample": sid, "second": sid2, "added": added.label_id}
