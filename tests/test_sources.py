"""Importing folders, images, COCO JSON and dataset names into persistent FiftyOne datasets."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from maskreview.core import masks as mk
from maskreview.core import sources
from maskreview.core.errors import BadInputError
from maskreview.core.images import image_header, read_image


def _png(path, w, h, value=90):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)


def _uncompressed(bitmap):
    flat = bitmap.flatten(order="F").astype(np.int8)
    runs, current, n = [], 0, 0
    for v in flat:
        if v == current:
            n += 1
        else:
            runs.append(n)
            current, n = v, 1
    runs.append(n)
    return {"size": list(bitmap.shape), "counts": runs}


@pytest.fixture
def foreign_coco(tmp_path):
    """A COCO file as another tool writes it: id gaps, polygons, both RLE kinds, iscrowd."""
    W, H = 64, 48
    for name in ("a.png", "b.png"):
        _png(tmp_path / "images" / name, W, H)
    rng = np.random.default_rng(0)
    blob = np.zeros((H, W), bool)
    blob[10:30, 5:25] = rng.random((20, 20)) > 0.3
    holey = np.zeros((H, W), bool)
    holey[0:48, 40:64] = True
    holey[20:25, 50:55] = False  # a hole, and it touches three borders
    anns = [
        {"id": 11, "image_id": 1, "category_id": 5, "iscrowd": 0, "bbox": [2.5, 3.25, 30.1, 20.7],
         "segmentation": [[2.5, 3.25, 32.6, 3.25, 32.6, 23.95, 2.5, 23.95], [40.2, 30.1, 60.9, 31.4, 50.3, 46.8]]},
        {"id": 12, "image_id": 1, "category_id": 90, "iscrowd": 1, "bbox": [5, 10, 20, 20],
         "segmentation": _uncompressed(blob)},
        {"id": 13, "image_id": 2, "category_id": 1, "iscrowd": 0, "bbox": [40, 0, 24, 48],
         "segmentation": mk.rle_to_json(mask_utils.encode(np.asfortranarray(holey.astype(np.uint8))))},
        {"id": 14, "image_id": 2, "category_id": 5, "iscrowd": 0, "bbox": [0, 0, 1, 1],
         "segmentation": [[0, 0, 1, 0, 1, 1]]},
    ]
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": W, "height": H},
                       {"id": 2, "file_name": "b.png", "width": W, "height": H}],
            "annotations": anns,
            "categories": [{"id": 1, "name": "cat"}, {"id": 5, "name": "dog"}, {"id": 90, "name": "toothbrush"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco))
    return path


def test_foreign_coco_imports_pixel_exact(fo, foreign_coco):
    ds = sources.open_source(foreign_coco)
    assert ds.persistent and len(ds) == 2
    assert ds.default_classes == ["cat", "dog", "toothbrush"]
    assert [c["id"] for c in ds.info["coco_categories"]] == [1, 5, 90]
    coco = COCO(str(foreign_coco))
    checked = 0
    for sample in ds.iter_samples():
        for det in sample.ground_truth.detections:
            ann = coco.anns[det.coco_id]
            expected = coco.annToMask(ann).astype(bool)
            got = mk.detection_to_bitmap(det, sample.metadata.height, sample.metadata.width)
            assert np.array_equal(got, expected), f"annotation {det.coco_id}"
            assert det.iscrowd == bool(ann["iscrowd"])
            assert det.label == coco.cats[ann["category_id"]]["name"]
            checked += 1
    assert checked == 4


def test_same_source_reuses_its_dataset(fo, foreign_coco):
    first = sources.open_source(foreign_coco)
    count = len(fo.list_datasets())
    second = sources.open_source(str(foreign_coco))
    assert second.name == first.name and len(fo.list_datasets()) == count


def test_dataset_name_is_a_source(fo, foreign_coco):
    ds = sources.open_source(foreign_coco, name="by-name-test")
    again = sources.open_source("by-name-test")
    assert again.name == ds.name and len(again) == 2


def test_images_dir_lookup_order(tmp_path, foreign_coco):
    assert sources.coco_images_dir(foreign_coco, None) == foreign_coco.parent / "images"
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert sources.coco_images_dir(foreign_coco, other) == other.resolve()
    shutil.move(foreign_coco.parent / "images", foreign_coco.parent / "data")
    assert sources.coco_images_dir(foreign_coco, None) == foreign_coco.parent / "data"
    shutil.move(foreign_coco.parent / "data", tmp_path / "gone")
    assert sources.coco_images_dir(foreign_coco, None) == foreign_coco.parent


def test_folder_import_is_recursive_and_reads_all_formats(fo, tmp_path):
    root = tmp_path / "photos"
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    for rel in ("a.jpg", "sub/b.png", "sub/deeper/c.bmp", "d.tiff", "e.webp"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        img.save(root / rel)
    (root / "notes.txt").write_text("not an image")
    ds = sources.open_source(root)
    assert len(ds) == 5
    assert set(ds.values("metadata.width")) == {30} and set(ds.values("metadata.height")) == {20}


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = 255  # a white stripe on the left of the stored image
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif.tobytes(), quality=95)
    width, height, _ = image_header(path)
    assert (width, height) == (20, 40)
    shown = read_image(path)
    assert shown.shape == (40, 20, 3)
    assert shown[:8, :, 0].mean() > 200 and shown[-8:, :, 0].mean() < 60  # stripe now on top


def test_zero_byte_image_names_the_file(fo, tmp_path):
    root = tmp_path / "mixed"
    _png(root / "good.png", 8, 8)
    (root / "empty.jpg").write_bytes(b"")
    with pytest.raises(BadInputError, match=r"empty\.jpg: empty file"):
        sources.open_source(root)
    assert not any(n.startswith("mixed-") for n in fo.list_datasets())
    ds = sources.open_source(root, skip_bad=True)
    assert len(ds) == 1


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["annotations"][0].update(image_id=999), "not in 'images'"),
    (lambda d: d["annotations"][0].update(category_id=7), "not in 'categories'"),
    (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]]), "odd number"),
    (lambda d: d["images"][0].update(file_name="missing.png"), "not found"),
    (lambda d: d.pop("images"), "not a COCO instances file"),
])
def test_bad_coco_is_refused_and_nothing_is_left(fo, foreign_coco, mutate, message):
    data = json.loads(foreign_coco.read_text())
    mutate(data)
    foreign_coco.write_text(json.dumps(data))
    before = set(fo.list_datasets())
    with pytest.raises(BadInputError, match=message):
        sources.open_source(foreign_coco)
    assert set(fo.list_datasets()) == before


def test_not_json(fo, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{ this is not json")
    with pytest.raises(BadInputError, match=r"broken\.json: not valid JSON \(line 1"):
        sources.open_source(path)


def test_unknown_source(fo):
    with pytest.raises(BadInputError, match="no such file, folder or FiftyOne dataset"):
        sources.open_source("/definitely/not/here")
