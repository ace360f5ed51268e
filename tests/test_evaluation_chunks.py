"""Evaluating a chunk of images at a time (``core.evaluation.chunks``: progress and Cancel
between chunks at 100,000 samples) gives pycocotools' numbers, the same as one COCOeval over
the whole set: the identity checks of ``test_evaluation_identity`` with one and two images per chunk."""

from __future__ import annotations

import numpy as np
import pytest
from test_evaluation_identity import _check_identity, _check_stored, crafted, demo  # noqa: F401  (fixtures)

from maskreview.core.evaluation import cache, chunks, coco, engine, reading
from maskreview.core.evaluation import results as R
from maskreview.core.fields import GT_FIELD, PRED_FIELD


def _same(a: R.EvalResults, b: R.EvalResults) -> None:
    for table in ("gt", "pred"):
        x, y = getattr(a, table), getattr(b, table)
        for name in ("outcome", "match", "iou", "biou", "occlusion", "area"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=f"{table}.{name}")
    assert a.summary == b.summary
    for name in ("precision", "pr_scores", "recall"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("by_class", [False, True])
@pytest.mark.parametrize("per_chunk", [1, 2])
@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_chunked_evaluation_is_pycocotools_and_the_whole_set(crafted, iou_type, per_chunk, by_class, monkeypatch):  # noqa: F811
    """``by_class``: COCOeval class by class, each class a few labels (``per_chunk``) or one
    image at a time, each class accumulated before the next (``chunks.Chunked.add_class``)."""
    whole = R.compute(crafted, iou_type=iou_type, reuse=False)
    monkeypatch.setattr(chunks, "CHUNK_IMAGES", per_chunk)
    if by_class:
        monkeypatch.setattr(chunks, "BY_CLASS_IMAGES", 0)
        monkeypatch.setattr(chunks, "CLASS_CHUNK_LABELS", per_chunk)
        monkeypatch.setattr(chunks, "CLASS_CHUNK_MAX_IMAGES", per_chunk)
    res = _check_identity(crafted, iou_type)
    _same(res, whole)
    again = R.compute(crafted, iou_type=iou_type)  # the reuse cache: IoU matrices kept per chunk
    _same(again, whole)
    _check_stored(crafted, res, f"chunk_{iou_type}_{per_chunk}{'_by_class' if by_class else ''}")


def test_chunked_demo_set_at_coco_and_off_grid_thresholds(demo, monkeypatch):  # noqa: F811
    whole = R.compute(demo, reuse=False)
    monkeypatch.setattr(chunks, "CHUNK_IMAGES", 5)
    monkeypatch.setattr(reading, "READ_BATCH", 5)  # read 5 samples a query (with progress)
    monkeypatch.setattr(coco, "BUILD_PIECE", 7)  # COCO inputs made 7 labels at a time
    monkeypatch.setattr(reading, "DETS_PIECE", 3)  # detections gathered 3 samples at a time
    cache.clear()
    from maskreview.core.progress import Progress

    read_in_batches = R.compute(demo, reuse=False, progress=Progress())
    _same(read_in_batches, whole)
    assert read_in_batches.sample_ids == whole.sample_ids
    _same(_check_identity(demo, "segm"), whole)
    _check_identity(demo, "segm", iou_thresh=0.75, t=5)
    _check_identity(demo, "segm", iou_thresh=0.6, t=0, iou_thrs=[0.6])
    assert len(R.compute(demo, reuse=False).blocks) == len(whole.blocks)
    monkeypatch.setattr(chunks, "BY_CLASS_IMAGES", 0)  # class by class, ~40 labels a chunk
    monkeypatch.setattr(chunks, "CLASS_CHUNK_LABELS", 40)
    by_class = R.compute(demo, reuse=False, progress=Progress())
    _same(by_class, whole)
    assert len(by_class.blocks) == len(whole.blocks)
    _same(_check_identity(demo, "segm"), whole)
    _check_identity(demo, "segm", iou_thresh=0.75, t=5)


def test_class_spans_cover_every_image_in_order():
    counts = np.array([0, 3, 0, 0, 9, 1, 1, 0, 2, 0])
    spans = chunks.class_spans(counts, labels=3, images=4)
    assert spans[0][0] == 0 and spans[-1][1] == len(counts)
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(spans, spans[1:]))
    assert all(s1 - s0 <= 4 for s0, s1 in spans)
    assert (4, 5) in spans  # an image past the labels of a span is one of its own
    assert chunks.class_spans(np.zeros(0, np.int64)) == [(0, 0)]


def test_accumulate_in_parts_is_one_accumulate(demo, monkeypatch):  # noqa: F811
    """chunks.accumulate (a C++ accumulate per class and area range, Cancel between; in one
    call up to ``ACCUMULATE_WHOLE`` per-image results) makes COCOeval's arrays and stats of one
    accumulate over everything, value for value."""
    from maskreview.core.progress import Progress

    inputs = coco.coco_inputs(demo, GT_FIELD, PRED_FIELD, "segm")
    one = engine.accumulate(engine.evaluate(inputs.gt, inputs.results, "segm"))
    parts = len(one.params.catIds) * len(one.params.areaRng)
    for whole, steps in ((0, parts), (10 ** 9, 0)):
        monkeypatch.setattr(chunks, "ACCUMULATE_WHOLE", whole)
        progress = Progress()
        parted = chunks.accumulate(engine.evaluate(inputs.gt, inputs.results, "segm"), progress)
        assert progress.done == steps and parts > 1
        for name in ("precision", "recall", "scores"):
            np.testing.assert_array_equal(parted.eval[name], one.eval[name], err_msg=name)
        np.testing.assert_array_equal(parted.stats, one.stats)
        assert parted._evalImgs_cpp == []  # (accumulated: let go of)


def test_masks_kept_packed_give_the_same_results(demo, monkeypatch):  # noqa: F811
    """Past ``reading.PACK_LABELS`` labels the box masks are kept 1 bit a pixel (memory at
    1,000,000 labels) and unpacked when used: the same results, and the same masks for the
    panels (``results.gt_masks``), read fresh or partly from the reuse cache."""
    from maskreview.core.progress import Progress

    cache.clear()
    whole = R.compute(demo, reuse=False)
    monkeypatch.setattr(reading, "PACK_LABELS", 0)
    packed = R.compute(demo, reuse=False, progress=Progress())
    _same(packed, whole)
    assert isinstance(packed.gt_masks, reading.PlacedMasks) and len(packed.gt_masks) == len(whole.gt_masks)
    assert all(isinstance(m, reading.Packed) for e in packed.entries for r in e.rows for m in r.masks)
    for a, b in zip(list(packed.gt_masks) + list(packed.pred_masks), whole.gt_masks + whole.pred_masks):
        assert a[:2] == b[:2]
        np.testing.assert_array_equal(a[2], b[2])
    for side in ("gt_boxes", "pred_boxes"):  # the boxes kept with the results, without unpacking
        np.testing.assert_array_equal(getattr(packed, side), getattr(whole, side))
        assert len(getattr(whole, side)) == len(getattr(whole, side.replace("boxes", "masks")))
    packed_bytes = sum(len(m.bits) for e in packed.entries for r in e.rows for m in r.masks)
    assert packed_bytes * 6 < sum(m.nbytes for _, _, m in whole.gt_masks + whole.pred_masks)
    # the cache holds unpacked entries; a tagged sample is read again, packed: both kinds at once
    monkeypatch.setattr(reading, "PACK_LABELS", 10 ** 9)
    R.compute(demo)
    sample = demo.first()
    sample.tags.append("seen")
    sample.save()
    monkeypatch.setattr(reading, "PACK_LABELS", 0)
    mixed = R.compute(demo, progress=Progress())
    kinds = {type(m) for e in mixed.entries for r in e.rows for m in r.masks}
    assert kinds == {reading.Packed, np.ndarray}
    _same(mixed, whole)


def test_packing_from_partway_through_the_reading(demo, monkeypatch):  # noqa: F811
    """Once ``PACK_LABELS`` is passed while reading, the masks read before are packed over the
    next batches (a batch's worth at a time, not in one go); the same results and masks,
    whatever is left unpacked at the end."""
    from maskreview.core.progress import Progress

    cache.clear()
    whole = R.compute(demo, reuse=False)
    n_labels = len(whole.gt) + len(whole.pred)
    monkeypatch.setattr(reading, "READ_BATCH", 25)
    monkeypatch.setattr(reading, "PACK_LABELS", n_labels // 4)
    parted = R.compute(demo, reuse=False, progress=Progress())
    _same(parted, whole)
    # (the results' masks: with no cache an entry keeps no labels once gathered, cache.Entry.kept)
    held = [parted.gt_masks._masks, parted.pred_masks._masks]
    packed = [isinstance(m, reading.Packed) for masks in held for m in masks]
    assert all(isinstance(masks[0], reading.Packed) for masks in held)  # those read before the limit too
    assert sum(packed) > len(packed) * 3 // 4 - 40
    for a, b in zip(list(parted.gt_masks) + list(parted.pred_masks), whole.gt_masks + whole.pred_masks):
        assert a[:2] == b[:2]
        np.testing.assert_array_equal(a[2], b[2])
