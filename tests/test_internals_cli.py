"""``maskreview explain`` writes one PNG per view; a plain detector gets a clear note instead of a mask view."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import run_cli
from maskreview.core.demo import make_scene
from test_internals import build_tiny_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "scene.png"
    cv2.imwrite(str(path), make_scene(7, 3)[0][:, :, ::-1])
    return path


def test_explain_writes_every_view(tmp_path, image_path):
    model = build_tiny_model(tmp_path / "model")
    out = tmp_path / "out"
    proc = run_cli("explain", str(image_path), "--model", str(model), "--out", str(out), "--score-thresh", "0",
                   "--device", "cpu", "--instance", "1", "--top-k", "20", "--level", "p4", check=True)
    expected = {"fpn_p4.png", "fpn_p4_max.png", "fpn_levels.png", "rpn_topk.png", "rpn_instance_1.png",
                "roi_align_grid.png", "roi_align_vs_pool.png", "mask_head.png"}
    assert {p.name for p in out.iterdir()} == expected
    pictures = {}
    for name in expected:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
        img = cv2.imread(str(out / name))
        assert img is not None and img.shape[0] >= 100 and img.shape[1] >= 256, name
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50, name  # a picture, not a flat fill
        pictures[name] = img
    assert pictures["fpn_p4.png"].shape[0] > 512  # the 256 px image is drawn enlarged
    assert str(out / "mask_head.png") in proc.stdout


def test_explain_plain_detector(tmp_path, image_path):
    model = build_tiny_model(tmp_path / "frcnn", ["MODEL.MASK_ON", False])
    out = tmp_path / "out"
    proc = run_cli("explain", str(image_path), "--model", str(model), "--out", str(out), "--device", "cpu",
                   "--score-thresh", "0", check=True)
    assert "mask view unavailable" in proc.stderr and "MASK_ON" in proc.stderr
    names = {p.name for p in out.iterdir()}
    assert "mask_head.png" not in names and {"fpn_p3.png", "rpn_topk.png", "roi_align_vs_pool.png"} <= names
