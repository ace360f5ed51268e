"""Comparing two prediction fields per instance (issue #13 point 8): a hand-built case."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli

from maskreview.core import masks as mk
from maskreview.core.evaluation.compare import compare_fields
from maskreview.core.errors import BadInputError

H = W = 64


def _square(x, y, size=12):
    bitmap = np.zeros((H, W), bool)
    bitmap[y:y + size, x:x + size] = True
    return bitmap


def _det(bitmap, label, score=None):
    det = mk.bitmap_to_detection(bitmap, label)
    if score is not None:
        det.confidence = score
    return det


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.fixture
def case(fo, tmp_path):
    """Two images. GT: a square and a circle in the first; a triangle and a square in the second.

    A: first square (shifted by 2), circle called 'square', triangle; misses the second square.
    B: first square (shifted by 1), circle right; misses the triangle; second square.
    """
    ds = fo.Dataset(f"compare-{tmp_path.name}")
    ds.default_classes = ["square", "circle", "triangle"]
    gt_square, gt_circle, gt_triangle, gt_square2 = _square(4, 4), _square(40, 4), _square(4, 40), _square(40, 40)
    samples = []
    for i, (gts, a, b) in enumerate([
        ([(gt_square, "square"), (gt_circle, "circle")],
         [(_square(6, 4), "square", 0.9), (gt_circle, "square", 0.8)],
         [(_square(5, 4), "square", 0.9), (gt_circle, "circle", 0.7)]),
        ([(gt_triangle, "triangle"), (gt_square2, "square")],
         [(gt_triangle, "triangle", 0.9)],
         [(gt_square2, "square", 0.6)]),
    ]):
        samples.append(fo.Sample(
            filepath=str(tmp_path / f"{i}.png"), metadata=fo.ImageMetadata(width=W, height=H),
            ground_truth=fo.Detections(detections=[_det(m, c) for m, c in gts]),
            pred_a=fo.Detections(detections=[_det(m, c, s) for m, c, s in a]),
            pred_b=fo.Detections(detections=[_det(m, c, s) for m, c, s in b])))
    ds.add_samples(samples)
    return ds, {"square": _iou(gt_square, _square(6, 4)), "square_b": _iou(gt_square, _square(5, 4))}


def test_per_instance_diff_equals_the_hand_built_case(case):
    ds, ious = case
    before = ds.list_evaluations()
    comparison = compare_fields(ds.view(), "ground_truth", "pred_a", "pred_b")
    assert comparison.counts == {
        "square": {"both": 1, "a_only": 0, "b_only": 1, "neither": 0, "class_changed": 0},
        "circle": {"both": 0, "a_only": 0, "b_only": 1, "neither": 0, "class_changed": 1},
        "triangle": {"both": 0, "a_only": 1, "b_only": 0, "neither": 0, "class_changed": 0},
    }
    rows = {(r.gt_label, r.status): r for r in comparison.rows}
    assert len(rows) == len(comparison.rows) == 4
    first = rows[("square", "both")]
    assert first.a_iou == pytest.approx(ious["square"]) and first.b_iou == pytest.approx(ious["square_b"])
    assert first.iou_change == pytest.approx(ious["square_b"] - ious["square"]) and first.iou_change > 0
    circle = rows[("circle", "b_only")]
    assert (circle.a_label, circle.b_label, circle.class_changed) == ("square", "circle", True)
    assert circle.a_iou == pytest.approx(1.0) and circle.a_id is not None
    assert ds[circle.sample_id].pred_a.detections[1].id == circle.a_id
    triangle = rows[("triangle", "a_only")]
    assert (triangle.b_id, triangle.b_label, triangle.b_iou, triangle.iou_change) == (None, None, None, None)
    assert rows[("square", "b_only")].a_id is None
    a, b = comparison.metrics["a"], comparison.metrics["b"]
    assert a["per_class"]["triangle"] == pytest.approx(1.0) and b["per_class"]["triangle"] == pytest.approx(0.0)
    assert b["per_class"]["circle"] == pytest.approx(1.0) and a["per_class"]["circle"] == pytest.approx(0.0)
    assert set(a) == {"mAP", "AP50", "AP75", "per_class"}
    json.dumps(comparison.to_dict())
    assert ds.list_evaluations() == before  # no eval run stored


def test_compare_refuses_the_same_field_twice(case):
    ds, _ = case
    with pytest.raises(BadInputError, match="two different"):
        compare_fields(ds.view(), "ground_truth", "pred_a", "pred_a")
    with pytest.raises(BadInputError, match="no prediction field 'nope'"):
        compare_fields(ds.view(), "ground_truth", "pred_a", "nope")


def test_cli_compare_prints_the_same(case):
    ds, _ = case
    ds.persistent = True
    out = json.loads(run_cli("compare", ds.name, "--gt-field", "ground_truth", "--a", "pred_a", "--b", "pred_b",
                             "--json", check=True).stdout)
    assert out["counts"]["circle"] == {"both": 0, "a_only": 0, "b_only": 1, "neither": 0, "class_changed": 1}
    assert len(out["rows"]) == 4 and {r["status"] for r in out["rows"]} == {"both", "a_only", "b_only"}
    text = run_cli("compare", ds.name, "--a", "pred_a", "--b", "pred_b", check=True).stdout
    assert "A: pred_a" in text and "B: pred_b" in text and "class changed" in text
    circle_line = next(line for line in text.splitlines() if line.strip().startswith("circle") and "AP" not in line)
    assert circle_line.split()[1:] == ["0", "0", "1", "0", "1"]
    proc = run_cli("compare", ds.name, "--a", "pred_a", "--b", "pred_a")
    assert proc.returncode == 2 and proc.stderr.startswith("maskreview: error: ")

