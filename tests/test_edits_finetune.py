"""Close the loop: fine-tune a (tiny, random-init) model on the samples tagged reviewed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maskreview.core.errors import BadInputError
from maskreview.core.model.finetune import finetune_on_corrected
from maskreview.core.sources import open_source

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "resources" / "models" / "demo-r18-fpn.yaml"


def _random_model(out: Path) -> Path:
    import torch
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_file(str(DEMO_CONFIG))
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    out.mkdir()
    torch.save(build_model(cfg).state_dict(), out / "model_final.pth")
    (out / "config.yaml").write_text(cfg.dump())
    (out / "classes.json").write_text(json.dumps(["circle", "square", "triangle", "ring", "cross"]))
    return out


def test_finetune_on_reviewed_samples(fo, demo_coco, tmp_path):
    dataset = open_source(demo_coco, name="finetune")
    with pytest.raises(BadInputError, match="no samples tagged"):
        finetune_on_corrected(dataset, "demo", tmp_path / "none", iters=1)
    for sample in dataset.limit(3):
        sample.tags = ["reviewed"]
        sample.save()
    model = _random_model(tmp_path / "base")
    result = finetune_on_corrected(dataset, str(model), tmp_path / "tuned", iters=2, batch=2)
    assert result["samples"] == 3
    assert 0.0 <= result["before"]["mAP"] <= 1.0 and 0.0 <= result["after"]["mAP"] <= 1.0
    assert (tmp_path / "tuned" / "model_final.pth").is_file()
    assert result["training"]["train_samples"] == 3 and result["training"]["iters"] == 2
    # the scratch prediction fields are gone again
    assert not [f for f in dataset.get_field_schema() if f.startswith("heldout_")]
