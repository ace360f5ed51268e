"""`maskreview eval` in a subprocess: its JSON equals pycocotools run directly, results are stored."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from helpers_coco import pycocotools_direct

from maskreview.core.evaluation import coco, synthetic

KEYS = {"mAP": 0, "AP50": 1, "AP75": 2, "APs": 3, "APm": 4, "APl": 5, "AR100": 8}


def _check(out: dict, e) -> None:
    assert set(out) == set(KEYS) | {"per_class"}
    for key, i in KEYS.items():
        assert out[key] == pytest.approx(e.stats[i], abs=1e-12), key
    for k, cat in enumerate(e.params.catIds):
        p = e.eval["precision"][:, :, k, 0, -1]
        expected = p[p > -1].mean() if (p > -1).any() else -1
        assert out["per_class"][e.cocoGt.cats[cat]["name"]] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_cli_eval_dataset_and_files(fo, demo_coco, tmp_path, iou_type):
    from maskreview.core.sources import open_source

    ds = open_source(demo_coco, name=f"cli-eval-{iou_type}")
    synthetic.write_perturbed_predictions(ds, seed=5)
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    coco.to_json_files(coco.coco_inputs(ds, "ground_truth", "predictions", iou_type), gt_path, res_path)
    direct = pycocotools_direct(gt_path, res_path, iou_type)

    proc = run_cli("eval", "--gt", str(gt_path), "--pred", str(res_path), "--iou-type", iou_type, "--json", check=True)
    _check(json.loads(proc.stdout), direct)

    # stored under an eval key
    proc = run_cli("eval", ds.name, "--gt-field", "ground_truth", "--pred-field", "predictions",
                   "--iou-type", iou_type, "--eval-key", "cli", "--json", check=True)
    _check(json.loads(proc.stdout), direct)
    ds.reload()
    assert "cli" in ds.list_evaluations()
    assert sum(ds.values("cli_tp")) + sum(ds.values("cli_fn")) == ds.count("ground_truth.detections")


def test_cli_eval_bad_input_is_one_line(fo, tmp_path):
    gt = {"images": [{"id": 1, "width": 4, "height": 4}], "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4, "iscrowd": 0}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps([{"image_id": 5, "category_id": 1, "bbox": [0, 0, 2, 2],
                                                    "score": 0.5}]))
    proc = run_cli("eval", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "res.json"),
                   "--iou-type", "bbox", "--json")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("maskreview: error: ") and "image ids are not in" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("eval", "--gt", str(tmp_path / "gt.json"), "--json")
    assert proc.returncode == 2 and "both --gt and --pred" in proc.stderr
