"""Evaluating a chunk of images at a time (``core.evaluation.chunks``: progress and Cancel
between chunks at 100,000 samples) gives pycocotools' numbers, the same as one COCOeval over
the whole set: the identity checks of ``test_evaluation_identity`` with one and two images per chunk."""

from __future__ import annotations

import numpy as np
import pytest
from test_evaluation_identity import _check_identity, _check_stored, crafted, demo  # noqa: F401  (fixtures)

from maskreview.core.evaluation import cache, chunks, reading
from maskreview.core.evaluation import results as R


def _same(a: R.EvalResults, b: R.EvalResults) -> None:
    for table in ("gt", "pred"):
        x, y = getattr(a, table), getattr(b, table)
        for name in ("outcome", "match", "iou", "biou", "occlusion", "area"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=f"{table}.{name}")
    assert a.summary == b.summary
    for name in ("precision", "pr_scores", "recall"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("per_chunk", [1, 2])
@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_chunked_evaluation_is_pycocotools_and_the_whole_set(crafted, iou_type, per_chunk, monkeypatch):  # noqa: F811
    whole = R.compute(crafted, iou_type=iou_type, reuse=False)
    monkeypatch.setattr(chunks, "CHUNK_IMAGES", per_chunk)
    res = _check_identity(crafted, iou_type)
    _same(res, whole)
    again = R.compute(crafted, iou_type=iou_type)  # the reuse cache: IoU matrices kept per chunk
    _same(again, whole)
    _check_stored(crafted, res, f"chunk_{iou_type}_{per_chunk}")


def test_chunked_demo_set_at_coco_and_off_grid_thresholds(demo, monkeypatch):  # noqa: F811
    whole = R.compute(demo, reuse=False)
    monkeypatch.setattr(chunks, "CHUNK_IMAGES", 5)
    monkeypatch.setattr(reading, "READ_BATCH", 5)  # read 5 samples a query (with progress)
    cache.clear()
    from maskreview.core.progress import Progress

    read_in_batches = R.compute(demo, reuse=False, progress=Progress())
    _same(read_in_batches, whole)
    assert read_in_batches.sample_ids == whole.sample_ids
    _same(_check_identity(demo, "segm"), whole)
    _check_identity(demo, "segm", iou_thresh=0.75, t=5)
    _check_identity(demo, "segm", iou_thresh=0.6, t=0, iou_thrs=[0.6])
    assert len(R.compute(demo, reuse=False).blocks) == len(whole.blocks)
