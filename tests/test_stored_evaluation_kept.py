"""Reopening a dataset with a stored evaluation loads what was computed, not computes it again
(#17.4: at 100,000 samples that was minutes and GBs on every open), while no sample changed since;
an edit makes the next open compute it from the labels as they are."""

from __future__ import annotations

import numpy as np


def test_a_kept_evaluation_loads_while_the_labels_stay_and_is_computed_again_after_an_edit(demo_coco):
    from helpers_coco import perturbed_demo
    from maskreview.core.evaluation import analysis, evaluate_and_store
    from maskreview.core.review import stored
    from maskreview.core.review.evaluation import load_stored, stored_evaluation

    with perturbed_demo(demo_coco, "stored-kept", seed=5) as dataset:
        first = evaluate_and_store(dataset.view(), eval_key="eval")
        key, config = stored_evaluation(dataset)
        assert stored.load(dataset, key, config) is None  # nothing kept yet
        assert stored.keep(dataset, first) is not None

        loaded = load_stored(dataset, key, config)
        assert loaded.evaluation is None  # loaded from the file: COCOeval did not run
        assert loaded.eval_key == "eval" and loaded.summary == first.summary
        assert loaded.sample_ids == first.sample_ids
        for name in ("tp", "fp", "fn"):
            assert (loaded.per_sample[name] == first.per_sample[name]).all()
        assert list(loaded.pred.label_id) == list(first.pred.label_id)
        # re-matching at other thresholds works from the kept IoU blocks, as from the computed run
        a, b = analysis.rematch_dataset(loaded, 0.7, 0.6), analysis.rematch_dataset(first, 0.7, 0.6)
        assert (a.per_sample["fp"] == b.per_sample["fp"]).all() and np.array_equal(a.pred_outcome, b.pred_outcome)

        sample = dataset.first()  # an edit: one prediction fewer
        sample["predictions"].detections = sample["predictions"].detections[1:]
        sample.save()
        again = load_stored(dataset, key, config)
        assert again.evaluation is not None  # computed from the labels as they are now
        assert len(again.pred) == len(first.pred) - 1
        assert load_stored(dataset, key, config).evaluation is None  # and kept for the next open


def test_an_edit_between_the_evaluation_and_keeping_it_is_not_hidden(demo_coco):
    """The fingerprint is the labels' as the evaluation read them, not as they are when the
    keep job runs (on a worker, later): an edit in between made the next open load the figures
    of the labels before the edit."""
    from helpers_coco import perturbed_demo
    from maskreview.core.evaluation import evaluate_and_store
    from maskreview.core.evaluation.results import compute
    from maskreview.core.review import stored
    from maskreview.core.review.evaluation import load_stored, stored_evaluation

    with perturbed_demo(demo_coco, "stored-race", seed=6) as dataset:
        first = evaluate_and_store(dataset.view(), eval_key="eval")
        key, config = stored_evaluation(dataset)
        sample = dataset.first()  # edited after the evaluation, before its keep job ran
        sample["predictions"].detections = sample["predictions"].detections[1:]
        sample.save()
        stored.keep(dataset, first)
        again = load_stored(dataset, key, config)
        assert again.evaluation is not None  # not the kept figures of the labels before the edit
        assert len(again.pred) == len(first.pred) - 1

        computed = compute(dataset.view())  # the reopen path: computed, kept later
        computed.eval_key = key
        sample = dataset.first()
        sample["predictions"].detections = sample["predictions"].detections[1:]
        sample.save()
        stored.keep(dataset, computed)
        assert len(load_stored(dataset, key, config).pred) == len(first.pred) - 2


def test_the_review_queue_of_a_kept_evaluation_is_the_computed_ones(demo_coco):
    """The kept file holds no masks: the queue's boxes (framing each entry) came from them, and
    Review ▸ queue on a reopened dataset failed with an IndexError."""
    from helpers_coco import perturbed_demo
    from maskreview.core.evaluation import evaluate_and_store
    from maskreview.core.review import queue, stored
    from maskreview.core.review.evaluation import load_stored, stored_evaluation

    with perturbed_demo(demo_coco, "stored-queue", seed=7) as dataset:
        first = evaluate_and_store(dataset.view(), eval_key="eval")
        key, config = stored_evaluation(dataset)
        stored.keep(dataset, first)
        loaded = load_stored(dataset, key, config)
        assert loaded.evaluation is None and not loaded.gt_masks  # from the file, no masks
        kept, computed = queue.build_queue(loaded), queue.build_queue(first)
        assert len(computed.entries) > 10
        assert [(e.kind, e.label_id, e.other_id, e.box) for e in kept.entries] == \
               [(e.kind, e.label_id, e.other_id, e.box) for e in computed.entries]
