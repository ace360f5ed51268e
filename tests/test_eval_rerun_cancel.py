"""Re-running an evaluation under its key (in place, the same fields over the whole dataset) can be
cancelled while its values are written, or fail there, and the old run is intact afterwards:
every sample holds the values it held under the key before, the run stays registered with its
results (#17, evaluate all at 100,000: Cancel waited 32.9 s for the overwrite to end). And the
results FiftyOne keeps are the ones its own list of matches made (they are now built with numpy:
that list cost ~9 s of CPU at 1,000,000 labels with no progress)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_coco import documents_but_revisions, perturbed_demo

from maskreview.core.errors import CancelledError
from maskreview.core.evaluation import evaluate_and_store, runs, synthetic
from maskreview.core.fields import REV_BY_FIELD
from maskreview.core.progress import Progress
from maskreview.core.store import reader

KEY = "again"


@pytest.fixture(scope="module")
def demo(demo_coco):
    with perturbed_demo(demo_coco, "eval-rerun-cancel", seed=9) as dataset:
        yield dataset


class _CancelsWhenWriting(Progress):
    """Cancels once the rerun has written some of its values (a sample's tp differs)."""

    def __init__(self, dataset, old: dict):
        super().__init__()
        self.dataset, self.old, self.did = dataset, old, False

    def on_update(self) -> None:
        if self.did:
            return
        for d in reader.collection(self.dataset).find({}, {f"{KEY}_tp": 1, REV_BY_FIELD: 1}):
            if str(d.get(REV_BY_FIELD, "")).startswith(f"evaluation {KEY} ") and d.get(f"{KEY}_tp") != self.old[d["_id"]]:
                self.did = True
                self.cancel()
                return


def _old_run(dataset):
    first = evaluate_and_store(dataset.view(), eval_key=KEY)
    old_tp = {d["_id"]: d.get(f"{KEY}_tp") for d in reader.collection(dataset).find({}, {f"{KEY}_tp": 1})}
    synthetic.write_perturbed_predictions(dataset, seed=11)  # other predictions: every value changes
    return first, old_tp


def test_a_rerun_cancelled_while_writing_puts_the_old_values_back(demo, monkeypatch):
    monkeypatch.setattr(runs, "WRITE_BATCH", 2)
    first, old_tp = _old_run(demo)
    before = documents_but_revisions(demo)
    progress = _CancelsWhenWriting(demo, old_tp)
    with pytest.raises(CancelledError):
        evaluate_and_store(demo.view(), eval_key=KEY, progress=progress)
    assert progress.did  # cancelled with some new values written
    assert documents_but_revisions(demo) == before  # each sample holds what it held under the key
    assert KEY in demo.list_evaluations()
    assert demo.load_evaluation_results(KEY).mAP() == pytest.approx(first.summary["mAP"])
    again = evaluate_and_store(demo.view(), eval_key=KEY)  # and it evaluates again, to the end
    assert demo.load_evaluation_results(KEY).mAP() == pytest.approx(again.summary["mAP"])


def test_a_rerun_failing_while_writing_keeps_the_old_run(demo, monkeypatch):
    monkeypatch.setattr(runs, "WRITE_BATCH", 2)
    first, _ = _old_run(demo)
    before = documents_but_revisions(demo)
    calls = []
    write = runs.sw.write

    def fails_on_the_third(dataset, ops, ordered=False):
        if ops and REV_BY_FIELD in str(ops[0].update) and "restored" not in str(ops[0].update):
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("the database went away")
        return write(dataset, ops, ordered)

    monkeypatch.setattr(runs.sw, "write", fails_on_the_third)
    with pytest.raises(RuntimeError, match="went away"):
        evaluate_and_store(demo.view(), eval_key=KEY)
    assert len(calls) == 3
    assert documents_but_revisions(demo) == before
    assert demo.load_evaluation_results(KEY).mAP() == pytest.approx(first.summary["mAP"])


def _matches(results) -> list[tuple]:
    """The list FiftyOne's own results take (what runs built before)."""
    names, gt, pred = results.classes, results.gt, results.pred
    out = []
    for d in range(len(pred)):
        if pred.outcome[d] == "tp":
            g = pred.match[d]
            out.append((names[gt.cls[g]], names[pred.cls[d]], float(pred.iou[d]), float(pred.score[d]),
                        gt.label_id[g], pred.label_id[d]))
        elif pred.outcome[d] == "fp":
            out.append((None, names[pred.cls[d]], None, float(pred.score[d]), None, pred.label_id[d]))
    for g in np.flatnonzero(gt.outcome == "fn"):
        out.append((names[gt.cls[g]], None, None, None, gt.label_id[g], None))
    return out


def test_the_stored_results_are_fiftyones_own(demo):
    from fiftyone.utils.eval.coco import COCODetectionResults

    results = evaluate_and_store(demo.view(), eval_key="same")
    config = demo.get_evaluation_info("same").config
    theirs = COCODetectionResults(demo.view(), config, "same", _matches(results), results.precision, results.rec_thrs,
                                  results.iou_thrs, results.classes, recall_sweep=results.recall,
                                  thresholds=results.pr_scores)
    ours = demo.load_evaluation_results("same")
    assert {"tp", "fp", "fn"} <= set(results.pred.outcome) | set(results.gt.outcome)
    a, b = ours.serialize(), theirs.serialize()
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name] or (np.asarray(a[name]).dtype.kind == "f" and np.allclose(a[name], b[name])), name
    for name in ("ytrue", "ypred", "confs", "ious", "ytrue_ids", "ypred_ids"):
        assert np.asarray(getattr(ours, name)).tolist() == np.asarray(getattr(theirs, name)).tolist(), name
    # FiftyOne's mAP is a mean over its precision array's axes: read back from the database the
    # array is laid out anew, and numpy's sums may round the last bit otherwise (as in any process)
    assert ours.mAP() == pytest.approx(theirs.mAP(), rel=1e-14, abs=0)
    assert ours.report() == theirs.report()
    runs._delete_run(demo, "same")


def test_cancel_is_looked_at_between_pieces_of_the_occlusion(demo, monkeypatch):
    """The occlusion runs while a rerun's values are written: a Cancel is honoured after the
    piece of images it came in, not after the span (2,500 GTs: 0.3-0.6 s at 100,000 samples)."""
    from maskreview.core.evaluation import results as R

    monkeypatch.setattr(R, "OCCLUSION_PIECE", 2)
    progress, calls = Progress(), []
    real = R.gt_occlusion

    def occlusion(*args):
        calls.append(len(args[0]))
        progress.cancel()  # in the first piece
        return real(*args)

    monkeypatch.setattr(R, "gt_occlusion", occlusion)
    with pytest.raises(CancelledError):
        R.compute(demo, progress=progress, reuse=False)
    assert len(calls) == 1 and calls[0] < 10  # one piece of a span, not the span
