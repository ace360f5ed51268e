"""COCOeval split over worker processes gives exactly what one COCOeval in this process gives."""

from __future__ import annotations

import numpy as np
import pytest

from helpers_coco import perturbed_demo, pycocotools_direct

from maskreview.core.evaluation import coco, results as R, sharded


@pytest.fixture(scope="module")
def ds(demo_coco):
    with perturbed_demo(demo_coco, "eval-sharded", seed=5) as dataset:
        yield dataset


def _compute(ds, monkeypatch, workers: int, iou_type: str, **kw):
    monkeypatch.setenv("MASKREVIEW_EVAL_WORKERS", str(workers))
    monkeypatch.setenv("MASKREVIEW_EVAL_MIN_IMAGES_PER_SHARD", "1")
    return R.compute(ds, iou_type=iou_type, **kw)


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_sharded_equals_one_cocoeval(ds, monkeypatch, tmp_path, iou_type):
    inline = _compute(ds, monkeypatch, 1, iou_type)
    assert sharded.shard_count(len(ds)) == 1
    split = _compute(ds, monkeypatch, 3, iou_type)
    assert sharded.shard_count(len(ds)) == 3
    assert sharded.worker_pids(), "the sharded run used no worker process"
    assert split.summary == inline.summary
    np.testing.assert_array_equal(split.evaluator.eval["precision"], inline.evaluator.eval["precision"])
    np.testing.assert_array_equal(split.evaluator.eval["scores"], inline.evaluator.eval["scores"])
    assert split.gt_geoms == inline.gt_geoms and split.pred_geoms == inline.pred_geoms
    for table in ("gt", "pred"):
        a, b = getattr(split, table), getattr(inline, table)
        for column in ("outcome", "match", "iou", "biou", "occlusion", "area"):
            np.testing.assert_array_equal(getattr(a, column), getattr(b, column), err_msg=f"{table}.{column}")
    # the IoU blocks (live re-matching at other thresholds) are the same too
    for x, y in zip(split.blocks, inline.blocks, strict=True):
        np.testing.assert_array_equal(x.ious, y.ious)
        np.testing.assert_array_equal(x.preds, y.preds)
        np.testing.assert_array_equal(x.gts, y.gts)
    # the shards' boundary IoU is what the whole-run computation gives
    if iou_type == "segm":
        assert np.isfinite(split.pred.biou).sum() > 10
        before = split.pred.biou.copy(), split.gt.biou.copy()
        split.pred.biou[:], split.gt.biou[:] = np.nan, np.nan
        R.compute_boundary_iou(split)
        np.testing.assert_array_equal(split.pred.biou, before[0])
        np.testing.assert_array_equal(split.gt.biou, before[1])
    # and both are pycocotools' own numbers
    inputs = coco.coco_inputs(ds, "ground_truth", "predictions", iou_type)
    coco.to_json_files(inputs, tmp_path / "gt.json", tmp_path / "res.json")
    direct = pycocotools_direct(tmp_path / "gt.json", tmp_path / "res.json", iou_type)
    assert np.allclose([split.summary[k] for k in coco.STAT_NAMES], direct.stats, atol=1e-12, rtol=0)


def test_a_failing_pool_falls_back_to_this_process(ds, monkeypatch):
    expected = _compute(ds, monkeypatch, 1, "segm").summary

    def broken(n):
        raise OSError("no processes here")

    monkeypatch.setattr(sharded, "_executor", broken)
    assert _compute(ds, monkeypatch, 3, "segm").summary == expected


def test_workers_failing_midway_fall_back_to_this_process(ds, monkeypatch):
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    expected = _compute(ds, monkeypatch, 1, "segm")

    class DeadPool:
        def submit(self, fn, *args):
            f = Future()
            f.set_exception(BrokenProcessPool("a worker died"))
            return f

    monkeypatch.setattr(sharded, "_executor", lambda n: DeadPool())
    got = _compute(ds, monkeypatch, 3, "segm")
    assert got.summary == expected.summary
    assert got.gt_geoms == expected.gt_geoms and got.pred_geoms == expected.pred_geoms
    assert (got.gt.occlusion == expected.gt.occlusion).all()


def test_a_shard_without_detections(ds, monkeypatch):
    """Predictions only in the first half of the samples: the other shards have none."""
    half = ds.clone("eval-sharded-half")
    try:
        ids = half.values("id")
        for sample in half.select(ids[len(ids) // 2:]):
            sample.predictions = None
            sample.save()
        expected = _compute(half, monkeypatch, 1, "segm")
        got = _compute(half, monkeypatch, 3, "segm")
        assert got.summary == expected.summary
        np.testing.assert_array_equal(got.gt.outcome, expected.gt.outcome)
        assert (got.gt.outcome[got.gt.img >= len(ids) // 2] == "fn").all()
    finally:
        half.delete()
