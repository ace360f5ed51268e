"""COCO instances and results files: every structural problem is one line naming the file, the entry
and the problem; nothing is imported from a refused file; what an import trusts is checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from conftest import run_cli
from maskreview.core import masks as mk
from maskreview.core import sources
from maskreview.core.errors import BadInputError
from maskreview.core.evaluation import evaluate_files

W, H = 64, 48


def _rle(bitmap) -> dict:
    return mk.rle_to_json(mask_utils.encode(np.asfortranarray(bitmap.astype(np.uint8))))


def _blob(x0=5, y0=10, x1=25, y1=30):
    bitmap = np.zeros((H, W), bool)
    bitmap[y0:y1, x0:x1] = True
    return bitmap


def good_coco() -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H},
                   {"id": 2, "file_name": "b.png", "width": W, "height": H}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [2, 3, 30, 20],
             "segmentation": [[2, 3, 32, 3, 32, 23, 2, 23]]},
            {"id": 2, "image_id": 2, "category_id": 2, "iscrowd": 0, "bbox": [5, 10, 20, 20],
             "segmentation": _rle(_blob())},
            {"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 1, "bbox": [40, 0, 10, 10],
             "segmentation": {"size": [H, W], "counts": [W * H - 10, 10]}},
            {"id": 4, "image_id": 1, "category_id": 2, "bbox": [40, 30, 5, 5]},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }


@pytest.fixture
def coco_dir(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(tmp_path / "images" / name)
    return tmp_path


def _write(coco_dir, data, name="instances.json"):
    path = coco_dir / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _set(path, value):
    """A mutation setting ``data[path[0]][path[1]]... = value``."""
    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


BAD_INSTANCES = [
    # (mutation, where the message points, what it says)
    (_set(("annotations", 0), 5), "annotation 0", "is a number, not an object"),
    (_set(("annotations", 1), ["not", "an", "object"]), "annotation 1", "is a list, not an object"),
    (_set(("annotations", 3, "bbox"), ["a", "b", "c", "d"]), r"annotation 3 \(id 4, image 1\)", "4 finite numbers"),
    (_set(("annotations", 3, "bbox"), [1, 2, 3]), "annotation 3", r"list \[x, y, width, height\]"),
    (_set(("annotations", 1, "segmentation", "counts"), "\x7f\x7f~~garbage"), "annotation 1", "outside the COCO format"),
    (_set(("annotations", 1, "segmentation", "counts"), _rle(_blob())["counts"] + "11"), "annotation 1",
     "not the image's 3072"),
    (_set(("annotations", 1, "segmentation", "counts"), "0T3"), "annotation 1", "covers 100 pixels"),  # short
    (_set(("annotations", 2, "segmentation", "counts"), [W * H + 5, -5]), "annotation 2", "non-negative"),
    (_set(("annotations", 2, "segmentation", "counts"), [1, 2]), "annotation 2", "sum to 3, not 3072"),
    (_set(("annotations", 2, "segmentation", "size"), [H]), "annotation 2", r"size must be \[height, width\]"),
    (_set(("annotations", 0, "segmentation"), "polygon"), "annotation 0", "polygons .* or RLE"),
    (_set(("annotations", 0, "segmentation"), [[0, 0, 1e9, 0, 1e9, 1e9]]), "annotation 0", "far outside"),
    (_set(("annotations", 0, "iscrowd"), "yes"), "annotation 0", "iscrowd must be 0 or 1"),
    (_set(("annotations", 0, "id"), 2), r"annotation 1 \(id 2", "same id as annotation 0"),
    (_set(("annotations", 0, "image_id"), "1"), "annotation 0", "not in 'images'"),
    (_set(("annotations", 3, "bbox"), [1, 1, -3, 4]), r"annotation 3 \(id 4, image 1\)", "negative width or height"),
    (_set(("images", 0, "width"), "64"), r"image 0 \(id 1\)", "width must be a positive whole number"),
    (_set(("images", 1, "height"), -48), r"image 1 \(id 2\)", "height must be a positive whole number"),
    (_set(("images", 0), [1, "a.png"]), "image 0", "is a list, not an object"),
    (_set(("images", 1, "id"), 1), "images 0 and 1", "both have id 1"),
    (_set(("images", 0, "id"), 1.5), "image 0", "no whole-number id"),
    (_set(("images", 0, "file_name"), None), r"image 0 \(id 1\)", "file_name must be a non-empty string"),
    (_set(("images", 0, "file_name"), "a\x00.png"), r"image 0 \(id 1\)", "not a usable path"),
    (_set(("images", 0, "file_name"), "x" * 5000 + ".png"), r"image 0 \(id 1\)", "not a usable path"),
    (_set(("images", 0, "file_name"), "\ud800.png"), r"image 0 \(id 1\)", "not a usable path"),
    (_set(("categories",), {"id": 1}), "'categories'", "must be a list, not an object"),
    (_set(("categories", 0), "cat"), "category 0", "is a string, not an object"),
    (_set(("categories", 0, "id"), "one"), "category 0", "no whole-number id"),
    (_set(("categories", 1, "name"), "cat"), "categories 1 and 2", "both named 'cat'"),
    (_set(("categories", 1, "name"), None), r"category 1 \(id 2\)", "needs a name"),
]


@pytest.mark.parametrize("mutate,where,what", BAD_INSTANCES)
def test_bad_coco_names_file_entry_and_problem(fo, coco_dir, mutate, where, what):
    data = good_coco()
    mutate(data)
    path = _write(coco_dir, data)
    before = set(fo.list_datasets())
    with pytest.raises(BadInputError) as info:
        sources.open_source(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert re.search(f"{where}.*{what}", message), message
    assert "\n" not in message
    assert set(fo.list_datasets()) == before


@pytest.mark.parametrize("text,what", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"images": [], "x": ' + "9" * 5000 + "}", "not usable JSON"),
])
def test_json_that_python_cannot_take_is_one_line(fo, coco_dir, text, what):
    path = _write(coco_dir, text)
    with pytest.raises(BadInputError, match=what) as info:
        sources.open_source(path)
    assert str(info.value).startswith(str(path))


def test_the_good_file_imports(fo, coco_dir):
    ds = sources.open_source(_write(coco_dir, good_coco()))
    assert len(ds) == 2 and ds.count("ground_truth.detections") == 4


@pytest.mark.parametrize("mutate,what", [
    (_set(("annotations", 0), 5), "annotation 0 is a number, not an object"),
    (_set(("annotations", 1, "segmentation", "counts"), "\x7f~~garbage"), "annotation 1 (id 2, image 2)"),
    (_set(("images", 0, "width"), "64"), "image 0 (id 1): width must be"),
])
def test_cli_import_says_one_line(fo, coco_dir, mutate, what):
    data = good_coco()
    mutate(data)
    path = _write(coco_dir, data)
    before = set(fo.list_datasets())
    proc = run_cli("import", str(path))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"maskreview: error: {path}: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert what in proc.stderr
    assert set(fo.list_datasets()) == before


# ------------------------------------------------------------------------------- what is trusted

def test_short_rle_is_refused_not_filled_with_whatever_memory_held(fo, coco_dir):
    data = good_coco()
    short = _rle(np.ones((10, 10), bool))["counts"]  # an RLE of 100 pixels, for a 64x48 image
    data["annotations"][1]["segmentation"] = {"size": [H, W], "counts": short}
    with pytest.raises(BadInputError, match="covers 100 pixels, not the image's 3072"):
        sources.open_source(_write(coco_dir, data))


def test_duplicate_image_ids_are_refused(fo, coco_dir):
    data = good_coco()
    data["images"][1]["id"] = 1
    with pytest.raises(BadInputError, match="images 0 and 1 both have id 1"):
        sources.open_source(_write(coco_dir, data))


def test_json_size_is_checked_against_the_header_unless_trusted(fo, coco_dir):
    data = good_coco()
    data["images"][1].update(width=60, height=50)
    for ann in data["annotations"]:
        ann.pop("segmentation", None)  # boxes only, so the size is the only thing wrong
    path = _write(coco_dir, data)
    with pytest.raises(BadInputError, match=r"image 1 \(id 2\): the JSON says 60x50 but .*b\.png is 64x48"):
        sources.open_source(path)
    (coco_dir / "images" / "b.png").write_bytes(b"not read when the JSON size is trusted")
    ds = sources.open_source(path, trust_json_size=True)
    assert sorted(ds.values("metadata.width")) == [60, 64]


@pytest.mark.parametrize("box,what", [
    ("[1, 2, NaN, 4]", r"annotation 3 \(id 4, image 1\): bbox must be 4 finite numbers"),
    ("[1, 2, -Infinity, 4]", r"annotation 3 \(id 4, image 1\): bbox must be 4 finite numbers"),
    ("[1, 2, 1e999, 4]", r"annotation 3 \(id 4, image 1\): bbox must be 4 finite numbers"),
    ("[1, 2, -3, 4]", r"annotation 3 \(id 4, image 1\): bbox .* negative width or height"),
])
def test_bad_boxes_are_refused_with_the_annotation_index(fo, coco_dir, box, what):
    text = json.dumps(good_coco()).replace("[40, 30, 5, 5]", box)
    with pytest.raises(BadInputError, match=what):
        sources.open_source(_write(coco_dir, text))


def test_an_empty_mask_with_a_huge_box_allocates_no_huge_mask(fo, coco_dir):
    data = good_coco()
    data["annotations"][0].update(segmentation=[], bbox=[0, 0, 1e12, 1e12])
    ds = sources.open_source(_write(coco_dir, data))
    det = ds.first().ground_truth.detections[0]
    assert det.mask.shape == (H, W) and not det.mask.any()


def test_export_never_writes_nan(fo, coco_dir, tmp_path):
    from maskreview.core import export as ex

    ds = sources.open_source(_write(coco_dir, good_coco()))
    sample = ds.first()
    sample.ground_truth.detections[0].bounding_box = [float("nan"), 0.1, 0.2, 0.2]
    sample.ground_truth.detections[0].mask = None
    sample.save()
    for fmt in ("coco", "fiftyone"):
        with pytest.raises(BadInputError, match=r"a\.png: label 0 \('cat'\).*not finite"):
            ex.export(ds.view(), tmp_path / "out", fmt)
        assert not (tmp_path / "out").exists()
    sample.ground_truth.detections[0].bounding_box = [0.1, 0.1, 0.2, 0.2]
    sample.ground_truth.detections[1].confidence = float("inf")
    sample.save()
    with pytest.raises(BadInputError, match=r"a\.png: label 1 \('dog'\).*not finite"):
        ex.export(ds.view(), tmp_path / "out", "coco")


# ------------------------------------------------------------------------------- results files

def _gt_file(tmp_path, data=None):
    data = data or good_coco()
    for im in data["images"]:
        im.pop("file_name", None)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    return path


def _good_results():
    return [{"image_id": 2, "category_id": 2, "score": 0.9, "segmentation": _rle(_blob(6, 10, 25, 30)),
             "bbox": [6, 10, 19, 20]},
            {"image_id": 1, "category_id": 1, "score": 0.8, "segmentation": _rle(_blob(2, 3, 30, 22)),
             "bbox": [2, 3, 28, 19]}]


BAD_RESULTS = [
    (_set((0,), 7), "result 0", "lacks image_id"),
    (_set((1, "score"), "high"), r"result 1 \(image 1\)", "score must be a finite number"),
    (_set((1, "score"), float("nan")), r"result 1 \(image 1\)", "score must be a finite number"),
    (_set((0, "segmentation", "counts"), "\x7f~~"), r"result 0 \(image 2\)", "outside the COCO format"),
    (_set((0, "segmentation", "counts"), "0T3"), "result 0", "covers 100 pixels"),
    (_set((0, "segmentation"), {"size": [H, W], "counts": [-1, W * H + 1]}), "result 0", "non-negative"),
    (_set((1, "image_id"), "1"), "result 1", "image_id must be a whole number"),
    (_set((1, "category_id"), [1]), "result 1", "category_id must be a whole number"),
    (_set((0, "bbox"), ["x", 1, 2, 3]), "result 0", "4 finite numbers"),
]


@pytest.mark.parametrize("mutate,where,what", BAD_RESULTS)
def test_bad_results_file_names_file_entry_and_problem(tmp_path, mutate, where, what):
    results = _good_results()
    mutate(results)
    res_path = tmp_path / "res.json"
    res_path.write_text(json.dumps(results))
    with pytest.raises(BadInputError) as info:
        evaluate_files(_gt_file(tmp_path), res_path)
    assert str(info.value).startswith(str(res_path))
    assert re.search(f"{where}.*{what}", str(info.value)), str(info.value)


@pytest.mark.parametrize("mutate,what", [
    (_set(("annotations", 0), "x"), "annotation 0 is a string, not an object"),
    (_set(("images", 0, "width"), "64"), "image 0 (id 1): width must be"),
    (_set(("annotations", 1, "segmentation", "counts"), "0T3"), "annotation 1 (id 2, image 2): compressed RLE"),
    (_set(("categories", 0), None), "category 0 is null"),
    (_set(("images", 1, "width"), 10**7), "image 1 (id 2): 10000000x48 is 480000000 pixels, more than the limit"),
])
def test_bad_ground_truth_file_names_file_entry_and_problem(tmp_path, mutate, what):
    data = good_coco()
    mutate(data)
    gt_path = _gt_file(tmp_path, data)
    res_path = tmp_path / "res.json"
    res_path.write_text(json.dumps(_good_results()))
    with pytest.raises(BadInputError) as info:
        evaluate_files(gt_path, res_path)
    assert str(info.value).startswith(str(gt_path)) and what in str(info.value), str(info.value)


def test_results_nested_too_deeply(tmp_path):
    res_path = tmp_path / "res.json"
    res_path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BadInputError, match="res.json: JSON nested too deeply"):
        evaluate_files(_gt_file(tmp_path), res_path)


def test_good_results_evaluate_and_cli_bad_results_is_one_line(fo, tmp_path):
    res_path = tmp_path / "res.json"
    res_path.write_text(json.dumps(_good_results()))
    out = evaluate_files(_gt_file(tmp_path), res_path)
    assert 0 < out["mAP"] <= 1
    bad = _good_results()
    bad[0]["segmentation"]["counts"] = "\x7f~~"
    res_path.write_text(json.dumps(bad))
    proc = run_cli("eval", "--gt", str(tmp_path / "gt.json"), "--pred", str(res_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"maskreview: error: {res_path}: result 0 (image 2): ")


# ------------------------------------------------------------------------------- one meaning per name

def test_a_name_that_is_both_a_path_and_a_dataset_is_refused(fo, tmp_path, monkeypatch):
    fo.Dataset("collide", persistent=True)
    (tmp_path / "collide").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "collide" / "x.png")
    monkeypatch.chdir(tmp_path)
    before = set(fo.list_datasets())
    with pytest.raises(BadInputError, match=r"collide: is both a path \(.*/collide\) and a FiftyOne dataset name"):
        sources.open_source("collide")
    assert sources.resolve("./collide").kind == "folder"
    assert sources.resolve("dataset:collide").dataset_name == "collide"  # the way the message names
    with pytest.raises(BadInputError, match="nope: no such FiftyOne dataset"):
        sources.resolve("dataset:nope")
    proc = subprocess.run([sys.executable, "-m", "maskreview", "export", "collide", "--out", str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "is both a path" in proc.stderr, proc.stderr
    assert "./collide" in proc.stderr and "dataset:collide" in proc.stderr
    assert set(fo.list_datasets()) == before and not (tmp_path / "out").exists()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # no such path here: the name is the dataset
    assert sources.resolve("collide").kind == "dataset"


def test_export_of_a_field_that_holds_no_detections_is_refused(fo, coco_dir, tmp_path):
    from maskreview.core import export as ex

    ds = sources.open_source(_write(coco_dir, good_coco()))
    with pytest.raises(BadInputError, match="field 'filepath' holds StringField, not detections; export one of: "
                                            "ground_truth"):
        ex.export(ds.view(), tmp_path / "out", "coco", field="filepath")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source,what", [("x" * 5000, r"x\.\.\.: not a usable path \(File name too long\)"),
                                         ("a\x00b", "no such file, folder or FiftyOne dataset")])
def test_a_source_that_is_no_usable_path_is_one_line(fo, source, what):
    with pytest.raises(BadInputError, match=what):
        sources.open_source(source)
