"""Evaluation core: pycocotools' numbers, FiftyOne's per-label conventions, analyses, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from helpers_coco import perturbed_demo, pycocotools_direct

from maskreview.core import masks as mk
from maskreview.core.errors import BadInputError
from maskreview.core.evaluation import analysis, coco, evaluate, evaluate_files, matching, results as R, runs
from maskreview.core.evaluation import boundary, tide


@pytest.fixture(scope="module")
def ds(demo_coco):
    """The 12-scene demo set with perturbed-GT predictions (shared by this module's tests)."""
    with perturbed_demo(demo_coco, "eval-tests", seed=3) as dataset:
        yield dataset


@pytest.fixture(scope="module")
def res(ds):
    return R.compute(ds)


def _direct_files(dataset, tmp_path, iou_type):
    """GT and results files written here from the dataset, independently of maskreview's code."""
    classes = dataset.default_classes
    images, anns, dts = [], [], []
    for i, sample in enumerate(dataset.iter_samples()):
        h, w = sample.metadata.height, sample.metadata.width
        images.append({"id": i + 1, "width": w, "height": h})
        for field, out in (("ground_truth", anns), ("predictions", dts)):
            for det in sample[field].detections:
                bitmap = np.zeros((h, w), bool)
                x0, y0 = int(np.floor(det.bounding_box[0] * w + 0.5)), int(np.floor(det.bounding_box[1] * h + 0.5))
                mh, mw = det.mask.shape
                bitmap[y0:y0 + mh, x0:x0 + mw] = det.mask[: h - y0, : w - x0]
                rle = mask_utils.encode(np.asfortranarray(bitmap.astype(np.uint8)))
                rle["counts"] = rle["counts"].decode()
                box = [det.bounding_box[0] * w, det.bounding_box[1] * h, det.bounding_box[2] * w,
                       det.bounding_box[3] * h]
                item = {"image_id": i + 1, "category_id": classes.index(det.label) + 1}
                item.update({"segmentation": rle} if iou_type == "segm" else {"bbox": box})
                if field == "ground_truth":
                    item.update(id=len(out) + 1, iscrowd=0, area=float(bitmap.sum()), bbox=box)
                else:
                    item["score"] = det.confidence
                out.append(item)
    gt = {"images": images, "annotations": anns, "categories": [{"id": i + 1, "name": c} for i, c in enumerate(classes)]}
    gt_path, res_path = tmp_path / f"gt-{iou_type}.json", tmp_path / f"res-{iou_type}.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(dts))
    return gt_path, res_path


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_numbers_equal_pycocotools_directly(ds, tmp_path, iou_type):
    gt_path, res_path = _direct_files(ds, tmp_path, iou_type)
    direct = pycocotools_direct(gt_path, res_path, iou_type)
    ours = evaluate(ds, "ground_truth", "predictions", iou_type)
    assert 0.05 < ours["mAP"] < 0.95
    for name, value in zip(coco.STAT_NAMES, direct.stats):
        assert ours[name] == pytest.approx(value, abs=1e-9), name
    files = evaluate_files(gt_path, res_path, iou_type)
    assert [files[n] for n in coco.STAT_NAMES] == pytest.approx(list(direct.stats), abs=1e-9)
    for k, cat in enumerate(direct.params.catIds):
        p = direct.eval["precision"][:, :, k, 0, -1]
        assert ours["per_class"][direct.cocoGt.cats[cat]["name"]] == pytest.approx(p[p > -1].mean(), abs=1e-9)


def test_stored_results_agree_with_fiftyone(ds, res):
    runs.store(ds, res, "mr")
    fo_results = ds.evaluate_detections("predictions", gt_field="ground_truth", method="coco", use_masks=True,
                                        compute_mAP=True, eval_key="fo")
    assert {"mr", "fo"} <= set(ds.list_evaluations())
    for field in ("ground_truth", "predictions"):
        for suffix in ("", "_id"):
            ours = ds.values(f"{field}.detections.mr{suffix}", unwind=True)
            theirs = ds.values(f"{field}.detections.fo{suffix}", unwind=True)
            assert ours == theirs, (field, suffix)
        ours = np.array(ds.values(f"{field}.detections.mr_iou", unwind=True), dtype=float)
        theirs = np.array(ds.values(f"{field}.detections.fo_iou", unwind=True), dtype=float)
        np.testing.assert_allclose(ours, theirs, atol=1e-9)
    for name in ("tp", "fp", "fn"):
        assert ds.values(f"mr_{name}") == ds.values(f"fo_{name}")
    assert set(ds.values("predictions.detections.mr", unwind=True)) == {"tp", "fp"}
    assert fo_results.mAP() == pytest.approx(res.summary["mAP"], abs=1e-9)
    loaded = ds.load_evaluation_results("mr")
    assert loaded.mAP() == pytest.approx(res.summary["mAP"], abs=1e-12)
    assert ds.get_evaluation_info("mr").config.pred_field == "predictions"
    biou = np.array(ds.values("predictions.detections.mr_biou", unwind=True), dtype=float)
    tp = np.array(ds.values("predictions.detections.mr", unwind=True)) == "tp"
    assert np.isfinite(biou[tp]).all() and (biou[tp] <= 1).all() and np.isnan(biou[~tp]).all()
    runs.store(ds, res, "mr")  # a second run under the same key replaces the first
    assert ds.list_evaluations().count("mr") == 1


@pytest.mark.parametrize("t", [0.5, 0.65, 0.8, 0.95])
def test_rematch_equals_cocoeval_at_its_thresholds(ds, res, t):
    at_t = R.compute(ds, iou_thresh=t, boundary=False, occlusion=False)
    again = analysis.rematch_dataset(res, 0.0, t)
    assert list(again.pred_outcome) == list(at_t.pred.outcome)
    assert list(again.gt_outcome) == list(at_t.gt.outcome)


def test_other_threshold_and_live_sample_matcher(ds, res):
    loose = R.compute(ds, iou_thresh=0.3, boundary=False, occlusion=False)
    assert (loose.pred.outcome == "tp").sum() > (res.pred.outcome == "tp").sum()
    sample = ds.first()
    i = res.sample_ids.index(sample.id)
    matcher = matching.SampleMatcher(sample.ground_truth, sample.predictions, 256, 256)
    by_id = matcher.outcomes_by_id(0.0, 0.5)
    for table in (res.gt, res.pred):
        for row in np.flatnonzero(table.img == i):
            assert by_id[table.label_id[row]] == table.outcome[row]
    strict = matcher.match(conf_thresh=1.01)
    assert set(strict.pred_outcome) == {"below"} and strict.counts["tp"] == 0
    assert strict.counts["fn"] == len(sample.ground_truth.detections)


def test_tide_breakdown(res):
    report = tide.tide(res)
    assert report.ap50 == pytest.approx(res.summary["AP50"], abs=1e-12)
    fp = int((res.pred.outcome == "fp").sum())
    assert sum(v for k, v in report.counts.items() if k != "missed") == fp
    assert report.counts["missed"] <= int((res.gt.outcome == "fn").sum())
    for err in ("classification", "localization", "background", "duplicate"):
        assert report.counts[err] > 0, err
        assert report.delta_ap[err] > 0, err
        samples, labels = report.ids(err)
        assert len(labels) == report.counts[err] and samples


def test_confusion_cells_hold_exactly_their_labels(ds, res):
    conf = analysis.confusion(res)
    k = len(res.classes)
    assert conf.matrix.shape == (k + 1, k + 1) and conf.matrix[k, k] == 0
    for c in range(k):
        assert conf.matrix[c, c] == np.sum((res.pred.cls == c) & (res.pred.outcome == "tp"))
    off = [(r, c) for r in range(k) for c in range(k) if r != c and conf.matrix[r, c]]
    assert off, "perturbed labels must show up off the diagonal"
    r, c = off[0]
    samples, labels = conf.cell_ids(r, c)
    view = analysis.labels_view(ds, samples, labels)
    assert view.count("ground_truth.detections") == conf.matrix[r, c]
    assert set(view.distinct("ground_truth.detections.label")) == {res.classes[r]}
    assert set(view.distinct("predictions.detections.label")) == {res.classes[c]}
    n_gt = sum(len(g) for g, _ in conf.members.values())
    assert n_gt == np.sum(res.gt.outcome != "ignored")


def test_groups_and_orderings(ds, res):
    groups = analysis.failure_groups(res)
    kinds = {g.kind for g in groups}
    assert kinds == {"class", "size", "occlusion"}
    for kind in kinds:
        part = [g for g in groups if g.kind == kind]
        assert sum(g.n_gt for g in part) == np.sum(res.gt.outcome != "ignored")
        assert sum(g.fn for g in part) == np.sum(res.gt.outcome == "fn")
    for g in groups:
        assert g.tp + g.fn == g.n_gt
        view = analysis.labels_view(ds, g.sample_ids, g.label_ids)
        assert view.count("ground_truth.detections") + view.count("predictions.detections") == g.fp + g.fn
    order = analysis.sample_order(res, "fp")
    fps = dict(zip(res.sample_ids, res.per_sample["fp"]))
    assert [fps[s] for s in order] == sorted(fps.values(), reverse=True)
    f1 = analysis.sample_scores(res)["f1"]
    assert list(analysis.sorted_view(ds, res, "f1").values("id"))[0] == res.sample_ids[int(np.argmin(f1))]
    table = analysis.class_table(res)
    assert [row["class"] for row in table] == res.classes
    assert all(row["TP"] + row["FN"] == row["support"] for row in table)
    assert set(analysis.pr_curves(res)) == set(res.classes)


def test_boundary_iou_and_band():
    a = np.zeros((200, 200), bool)
    a[50:150, 50:150] = True
    b = np.roll(a, 3, axis=1)
    ra, rb = mk.encode_rle(a), mk.encode_rle(b)
    assert boundary.boundary_iou(ra, ra) == 1.0
    mask_iou = mask_utils.iou([ra], [rb], [0])[0, 0]
    biou = boundary.boundary_iou(ra, rb)
    assert 0 < biou < mask_iou
    band = boundary.disagreement_band(ra, rb)
    assert band.any() and not (band & ~(a ^ b)).any()
    assert not boundary.disagreement_band(ra, ra).any()
    # d = 2% of the diagonal = 6 px: the band of a 3-px shift covers the whole XOR here
    assert band.sum() == (a ^ b).sum()


def test_boundary_ious_batched_equal_eroding_each_full_image():
    import cv2

    rng = np.random.default_rng(4)
    pairs, heights, widths, expected = [], [], [], []
    for i in range(160):
        h, w = (int(v) for v in rng.integers(20, 300, 2))

        def item():  # noise (nothing left after erosion), a solid box (filled to the crop's edges), an ellipse
            mh, mw = (int(v) for v in rng.integers(1, 90, 2))
            kind = rng.random()
            if kind < 0.4:
                m = rng.random((mh, mw)) < 0.85
            elif kind < 0.7:
                m = np.ones((mh, mw), bool)
            else:
                yy, xx = np.mgrid[:mh, :mw]
                m = ((yy + 0.5 - mh / 2) / (mh / 2)) ** 2 + ((xx + 0.5 - mw / 2) / (mw / 2)) ** 2 <= 1
            return int(rng.integers(-20, w)), int(rng.integers(-20, h)), m

        gt = item()
        dt = (gt[0] + int(rng.integers(-4, 5)), gt[1] + int(rng.integers(-4, 5)), gt[2]) if i % 2 else item()
        if i >= 120:  # crops of one size, filled to their edges, next to each other in a mosaic
            h, w = 200, 200
            gt = int(rng.integers(0, 150)), int(rng.integers(0, 150)), np.ones((40, 40), bool)
            dt = gt[0] + 3, gt[1] + 2, gt[2]
        d = boundary.boundary_width(h, w)
        kernel = np.ones((2 * d + 1, 2 * d + 1), np.uint8)
        bands = []
        for x, y, m in (gt, dt):
            full = np.zeros((h, w), np.uint8)
            xs, ys, xe, ye = max(x, 0), max(y, 0), min(x + m.shape[1], w), min(y + m.shape[0], h)
            if xe > xs and ye > ys:
                full[ys:ye, xs:xe] = m[ys - y:ye - y, xs - x:xe - x]
            bands.append(full > cv2.erode(full, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0))
        union = (bands[0] | bands[1]).sum()
        expected.append((bands[0] & bands[1]).sum() / union if union else 0.0)
        pairs.append((gt, dt))
        heights.append(h)
        widths.append(w)
    assert 0 < np.mean(expected) < 1
    # one mosaic per image size or many small ones; crops in one band or side by side in several
    for mosaic, bands in ((boundary.MOSAIC_PIXELS, boundary.BANDS_WIDTH), (1 << 14, boundary.BANDS_WIDTH),
                          (boundary.MOSAIC_PIXELS, 1), (boundary.MOSAIC_PIXELS, 1 << 16)):
        old = boundary.MOSAIC_PIXELS, boundary.BANDS_WIDTH
        boundary.MOSAIC_PIXELS, boundary.BANDS_WIDTH = mosaic, bands
        try:
            np.testing.assert_allclose(boundary.boundary_ious(pairs, heights, widths), expected, atol=1e-12)
        finally:
            boundary.MOSAIC_PIXELS, boundary.BANDS_WIDTH = old


def test_occlusion_is_the_share_of_an_instance_inside_another_ones_box(res):
    checked = 0
    for i in range(len(res.sample_ids)):
        idx = np.flatnonzero(res.gt.img == i)
        if len(idx) < 2:
            assert (res.gt.occlusion[idx] == 0).all()
            continue
        rles = [res.gt_geoms[j] for j in idx]
        h, w = int(res.heights[i]), int(res.widths[i])
        boxes = mask_utils.frPyObjects(mask_utils.toBbox(rles), h, w)
        cover = np.asarray(mask_utils.iou(rles, boxes, [1] * len(idx))).reshape(len(idx), len(idx))
        np.fill_diagonal(cover, 0)
        np.testing.assert_allclose(res.gt.occlusion[idx], cover.max(axis=1), atol=1e-12)
        checked += int((cover.max(axis=1) > 0).sum())
    assert checked > 0


def test_crowd_follows_cocoeval(fo):
    dataset = fo.Dataset()
    full = np.zeros((64, 64), bool)
    full[8:40, 8:40] = True
    inside = np.zeros((64, 64), bool)
    inside[10:20, 10:20] = True
    other = np.zeros((64, 64), bool)
    other[45:60, 45:60] = True
    sample = fo.Sample(filepath="/tmp/none.png", metadata=fo.ImageMetadata(width=64, height=64))
    sample["gt"] = fo.Detections(detections=[mk.bitmap_to_detection(full, "a", iscrowd=True),
                                             mk.bitmap_to_detection(other, "a")])
    sample["pred"] = fo.Detections(detections=[mk.bitmap_to_detection(inside, "a", confidence=0.9),
                                               mk.bitmap_to_detection(other, "a", confidence=0.8)])
    dataset.add_sample(sample)
    res = R.compute(dataset, "gt", "pred")
    assert list(res.gt.outcome) == ["ignored", "tp"]
    assert list(res.pred.outcome) == ["ignored", "tp"]
    assert res.per_sample["fp"][0] == 0 and res.summary["mAP"] == pytest.approx(1.0)


def test_bad_input(fo, ds, tmp_path):
    dataset = fo.Dataset()
    s = fo.Sample(filepath="/tmp/x.png", metadata=fo.ImageMetadata(width=8, height=8))
    s["cls"] = fo.Classification(label="a")
    s["gt"] = fo.Detections(detections=[fo.Detection(label="a", bounding_box=[0.1, 0.1, 0.5, 0.5],
                                                     mask=np.ones((4, 4), bool))])
    s["empty"] = fo.Detections(detections=[])
    dataset.add_sample(s)
    with pytest.raises(BadInputError, match="holds Classification, not Detections"):
        evaluate(dataset, "gt", "cls")
    with pytest.raises(BadInputError, match="no prediction field 'nope'"):
        evaluate(dataset, "gt", "nope")
    with pytest.raises(BadInputError, match="has no detections"):
        evaluate(dataset, "gt", "empty")
    with pytest.raises(BadInputError, match="has no instances"):
        evaluate(dataset, "empty", "gt")
    with pytest.raises(BadInputError, match="eval key"):
        runs.evaluate_and_store(ds, eval_key="bad key")
    # a predicted class that GT does not have: COCO's AP -1, left out of mAP, with a warning
    inputs = coco.coco_inputs(ds, "ground_truth", "predictions")
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    coco.to_json_files(inputs, gt_path, res_path)
    results = json.loads(res_path.read_text())
    gt = json.loads(gt_path.read_text())
    gt["categories"].append({"id": 99, "name": "ghost"})
    gt_path.write_text(json.dumps(gt))
    results[0]["category_id"] = 99
    res_path.write_text(json.dumps(results))
    out = evaluate_files(gt_path, res_path)
    assert out["per_class"]["ghost"] == -1
    assert out["mAP"] == pytest.approx(pycocotools_direct(gt_path, res_path, "segm").stats[0], abs=1e-12)
    results[0]["category_id"] = 1234
    res_path.write_text(json.dumps(results))
    assert any("1234" in w for w in evaluate_files(gt_path, res_path)["warnings"])
    results[0]["image_id"] = 777
    res_path.write_text(json.dumps(results))
    with pytest.raises(BadInputError, match="image ids are not in"):
        evaluate_files(gt_path, res_path)
    with pytest.raises(BadInputError, match="looks like a COCO instances file"):
        evaluate_files(gt_path, gt_path)
    with pytest.raises(BadInputError, match="not found"):
        evaluate_files(tmp_path / "missing.json", res_path)


def test_paste_rles_equals_encoding_the_pasted_bitmaps():
    rng = np.random.default_rng(0)
    items, heights, widths, expected = [], [], [], []
    for i in range(600):
        h, w = (int(v) for v in rng.integers(1, 50, size=2))
        mh, mw = (int(v) for v in rng.integers(0 if i % 50 == 0 else 1, 25, size=2))
        x0, y0 = int(rng.integers(-8, w + 2)), int(rng.integers(-8, h + 2))
        if i % 4 == 0:  # full-height columns: runs that continue from one column into the next
            mh, y0 = h + int(rng.integers(0, 3)), -int(rng.integers(0, 2))
        m = rng.random((mh, mw)) < (0.95 if i % 4 == 0 else rng.random())
        full = np.zeros((h, w), bool)
        xs, ys, xe, ye = max(x0, 0), max(y0, 0), min(x0 + mw, w), min(y0 + mh, h)
        if xe > xs and ye > ys:
            full[ys:ye, xs:xe] = m[ys - y0:ye - y0, xs - x0:xe - x0]
        items.append((x0, y0, m))
        heights.append(h)
        widths.append(w)
        expected.append(mk.encode_rle(full))
    assert mk.paste_rles(items, heights, widths) == expected
    assert mk.paste_rles(items[:1], heights[0], widths[0]) == expected[:1]
    assert mk.paste_rles([], 5, 5) == []
