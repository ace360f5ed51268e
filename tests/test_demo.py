"""The synthetic demo scenes: deterministic, exact visible masks, classes, sizes, occlusion."""

import json

import numpy as np
from pycocotools.coco import COCO

from maskreview.core import demo


def test_scenes_are_deterministic():
    a_img, a_inst = demo.make_scene(3, 5)
    b_img, b_inst = demo.make_scene(3, 5)
    c_img, _ = demo.make_scene(4, 5)
    assert np.array_equal(a_img, b_img) and not np.array_equal(a_img, c_img)
    assert [c for c, _ in a_inst] == [c for c, _ in b_inst]
    assert all(np.array_equal(m1, m2) for (_, m1), (_, m2) in zip(a_inst, b_inst))


def test_visible_masks_do_not_overlap_and_occlusion_happens():
    occluded = 0
    for i in range(40):
        _, instances = demo.make_scene(0, i)
        stack = np.stack([m for _, m in instances]).astype(int)
        assert stack.sum(0).max() <= 1  # each pixel belongs to at most one visible instance
        occluded += sum(1 for j in range(len(instances)) for _, m in instances[j + 1:]
                        if (np.roll(m, 1, 0) & instances[j][1]).any())
    assert occluded > 0


def test_written_dataset_spans_classes_and_coco_sizes(tmp_path):
    path = demo.write_demo_dataset(tmp_path, n=60, seed=2)
    coco = COCO(str(path))
    assert {c["name"] for c in coco.dataset["categories"]} == set(demo.CLASSES)
    assert len(demo.CLASSES) >= 5
    areas = [a["area"] for a in coco.dataset["annotations"]]
    assert min(areas) < 32 ** 2 and max(areas) > 96 ** 2
    assert any(32 ** 2 <= a <= 96 ** 2 for a in areas)
    used = {a["category_id"] for a in coco.dataset["annotations"]}
    assert used == {c["id"] for c in coco.dataset["categories"]}
    for ann in coco.dataset["annotations"][:50]:
        assert coco.annToMask(ann).sum() == ann["area"]
    assert json.loads(path.read_text())["images"][0]["width"] == 256


def test_real_photos(tmp_path):
    out = demo.write_real_photos(tmp_path)
    files = sorted(out.glob("*.png"))
    assert len(files) == len(demo.REAL_PHOTOS) >= 5


def test_the_demo_opens_on_a_first_start_and_scenes_deleted_since_are_written_again(fo, tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    monkeypatch.setenv("MASKREVIEW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "DEMO_SCENES", 6)
    monkeypatch.setattr(demo, "DEMO_DATASET", "demo-first-start")
    first = demo.ensure_demo_dataset()
    assert len(first) == 6 and all(Path(p).is_file() for p in first.values("filepath"))

    shutil.rmtree(tmp_path / "cache")  # a cleaned cache: the dataset's images are gone
    again = demo.ensure_demo_dataset()
    assert again.name == "demo-first-start" and len(again) == 6
    assert all(Path(p).is_file() for p in again.values("filepath"))
