"""Export: COCO with exact RLE masks (round trip pixel-exact), safe paths, bad targets."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

from maskreview.core import export as ex
from maskreview.core import masks as mk
from maskreview.core.errors import BadInputError, MaskreviewError
from maskreview.core.sources import open_source

H, W = 24, 32


def _tricky_masks() -> list[np.ndarray]:
    holed = np.zeros((H, W), bool)
    holed[4:14, 4:16] = True
    holed[7:10, 8:11] = False  # a hole
    border = np.zeros((H, W), bool)
    border[:, 0] = True  # along the left and bottom image border
    border[H - 1, :] = True
    pixel = np.zeros((H, W), bool)
    pixel[12, 25] = True  # a one-pixel object
    overlap = np.zeros((H, W), bool)
    overlap[10:20, 10:20] = True  # overlaps the holed one
    return [holed, border, pixel, overlap]


def _write_coco(root: Path) -> tuple[Path, list[np.ndarray]]:
    (root / "images").mkdir(parents=True)
    masks = _tricky_masks()
    images, anns = [], []
    for i in range(2):
        name = f"scene{i}.png"
        Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)).save(root / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": W, "height": H})
        for j, m in enumerate(masks):
            rle = mk.rle_to_json(mk.encode_rle(m))
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1 + j % 2, "segmentation": rle,
                         "area": int(m.sum()), "bbox": list(mk.mask_bbox(m)), "iscrowd": 0})
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}))
    return path, masks


def _bitmaps(dataset) -> list[list[np.ndarray]]:
    return [[mk.detection_to_bitmap(d, H, W) for d in dets.detections]
            for dets in dataset.values("ground_truth")]


def test_coco_round_trip_is_pixel_exact(fo, tmp_path):
    source, masks = _write_coco(tmp_path / "src")
    first = open_source(source, name="rt-first")
    assert all(np.array_equal(a, b) for a, b in zip(_bitmaps(first)[0], masks))
    report = ex.export(first.view(), tmp_path / "out", "coco", copy_images=True)
    assert report["samples"] == 2 and report["annotations"] == 8

    from pycocotools.coco import COCO

    coco = COCO(str(tmp_path / "out" / "annotations.json"))
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[1])):
        assert np.array_equal(coco.annToMask(ann).astype(bool), masks[ann["id"] - 1])
    assert coco.loadAnns([3])[0]["area"] == 1 and coco.loadAnns([3])[0]["bbox"] == [25.0, 12.0, 1.0, 1.0]

    second = open_source(tmp_path / "out" / "annotations.json", name="rt-second")
    for a_list, b_list in zip(_bitmaps(first), _bitmaps(second)):
        assert len(a_list) == len(b_list) == 4
        assert all(np.array_equal(a, b) for a, b in zip(a_list, b_list))
    assert second.values("ground_truth.detections.label") == first.values("ground_truth.detections.label")


def test_hostile_file_names_stay_inside(fo, tmp_path, monkeypatch):
    root = tmp_path / "world"
    work = root / "w" / "sub"
    work.mkdir(parents=True)
    names = ["a/img.png", "b/img.png", "b/IMG.png", "x.png", "weird name\n;$(rm).png", "..hidden.png", "c/..\\..\\evil.png"]
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(p, format="PNG")
    dataset = fo.Dataset("hostile")
    dataset.add_samples([fo.Sample(filepath=str(root / n)) for n in names])
    # a relative path with parent steps, as someone's script might have stored it
    dataset._sample_collection.update_one({"filepath": str(root / "x.png")}, {"$set": {"filepath": "../../x.png"}})
    dataset.reload()
    monkeypatch.chdir(work)
    before = {p for p in tmp_path.rglob("*")}
    out = tmp_path / "out"
    dataset.add_sample_field("ground_truth", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    ex.export(dataset.view(), out, "coco", copy_images=True)
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p == out or p.is_relative_to(out) for p in created)
    files = sorted(p.name for p in (out / "images").iterdir())
    assert len(files) == len(names) and len({f.lower() for f in files}) == len(names)
    assert all(not f.startswith(".") and "/" not in f and "\n" not in f for f in files)
    data = json.loads((out / "annotations.json").read_text())
    assert sorted(im["file_name"] for im in data["images"]) == files


def test_refuses_a_folder_that_is_not_empty_or_a_file(fo, demo_coco, tmp_path):
    dataset = open_source(demo_coco, name="export-refuse")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(BadInputError, match="not empty"):
        ex.export(dataset.view(), full, "coco")
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BadInputError, match="not a folder"):
        ex.export(dataset.view(), tmp_path / "afile", "coco")
    empty = tmp_path / "empty"
    empty.mkdir()
    ex.export(dataset.view(), empty, "coco")  # an empty folder is fine
    assert (empty / "annotations.json").is_file()


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0:
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return proc.returncode == 0


def test_not_writable_target(fo, demo_coco, tmp_path, monkeypatch):
    dataset = open_source(demo_coco, name="export-ro")
    ro = tmp_path / "ro"
    mounted = _mount_tmpfs(ro, "ro,size=64k")
    try:
        if not mounted and os.geteuid() != 0:
            ro.chmod(0o555)
        elif not mounted:  # root without mount rights: make creating the staging folder fail the same way
            def refuse(*a, **k):
                raise PermissionError(errno.EACCES, "Permission denied")
            monkeypatch.setattr(ex.tempfile, "mkdtemp", refuse)
        with pytest.raises(BadInputError, match="cannot write there"):
            ex.export(dataset.view(), ro / "out", "coco")
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], check=True)
    assert not (ro / "out").exists()


def test_disk_full_leaves_nothing_that_looks_complete(fo, demo_coco, tmp_path, monkeypatch):
    dataset = open_source(demo_coco, name="export-full")
    small = tmp_path / "small"
    mounted = _mount_tmpfs(small, "size=64k")
    try:
        if not mounted:  # cannot mount here: make the copy fail as a full disk does
            def full(*a, **k):
                raise OSError(errno.ENOSPC, "No space left on device")
            monkeypatch.setattr(ex.shutil, "copyfile", full)
        with pytest.raises(MaskreviewError, match="disk full"):
            ex.export(dataset.view(), small / "out", "coco", copy_images=True)
        assert list(small.iterdir()) == []  # no output, no staging folder
    finally:
        if mounted:
            subprocess.run(["umount", str(small)], check=True)


def test_fiftyone_format_and_tag_selection(fo, demo_coco, tmp_path, monkeypatch):
    dataset = open_source(demo_coco, name="export-fo")
    ids = dataset.values("id")
    for sid in ids[:3]:
        s = dataset[sid]
        s.tags = ["reviewed"]
        s.ground_truth.detections[0].tags = ["fp"]
        s.save()
    ex.export(ex.select(dataset, ["reviewed"]), tmp_path / "fo", "fiftyone", copy_images=True)
    back = fo.Dataset.from_dir(str(tmp_path / "fo"), dataset_type=fo.types.FiftyOneDataset, name="export-fo-back")
    assert len(back) == 3 and back.count_sample_tags() == {"reviewed": 3}
    assert back.count_label_tags() == {"fp": 3}
    assert all(Path(p).is_relative_to(tmp_path / "fo") for p in back.values("filepath"))

    from helpers_edits import same_database_env

    monkeypatch.setenv("FIFTYONE_DATABASE_URI", same_database_env()["FIFTYONE_DATABASE_URI"])  # the CLI child
    monkeypatch.delenv("FIFTYONE_DATABASE_DIR")  # must use this process's database
    proc = run_cli("export", dataset.name, "--label-tags", "fp", "--format", "coco", "--out", str(tmp_path / "c"),
                   check=True)
    assert "exported 3 samples, 3 instances as coco" in proc.stdout
    data = json.loads((tmp_path / "c" / "annotations.json").read_text())
    assert all(Path(im["file_name"]).is_absolute() for im in data["images"])
    proc = run_cli("export", dataset.name, "--tags", "nope", "--out", str(tmp_path / "n"))
    assert proc.returncode == 2 and "nothing to export" in proc.stderr
    proc = run_cli("export", dataset.name, "--out", str(tmp_path / "c"))
    assert proc.returncode == 2 and "not empty" in proc.stderr
