"""A tiny Mask R-CNN model dir for engine tests: the demo architecture with random weights."""

from __future__ import annotations

import json
from pathlib import Path

from maskreview.core.demo import CLASSES as DEMO_CLASSES

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "resources" / "models" / "demo-r18-fpn.yaml"


def make_tiny_model_dir(out: Path, seed: int = 0) -> Path:
    """``config.yaml`` (cfg.dump()), ``model_final.pth`` (a plain state dict), ``classes.json``."""
    import torch
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_file(str(DEMO_CONFIG))
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(seed)
    model = build_model(cfg)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "model_final.pth")
    (out / "config.yaml").write_text(cfg.dump())
    (out / "classes.json").write_text(json.dumps(list(DEMO_CLASSES)))
    return out
