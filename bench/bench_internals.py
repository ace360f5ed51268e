"""Model internals: the stage-by-stage capture vs detectron2's own predictor path, and view drawing.

Timed on the CPU (or ``--device``), best of ``--repeat``, on demo scenes (256 px) and on a large
photo-sized image (1600x1200, resized to the model's test size like the predictor does):

- predictor: ``Engine.predict_instances`` (``GeneralizedRCNN.inference``: what ``infer`` runs);
- capture: ``internals.capture`` (same modules, plus the pre-NMS set, the proposal of every
  detection, the mask logits, and the FPN maps copied out);
- drawing: every view of the Model panel / ``explain`` from a capture (numpy + cv2).

Targets: capture <= 1.5x the predictor's time; drawing one view <= 100 ms (interactive sliders).
Uses the demo model when it is present, else a random-init model with the demo architecture
(score threshold 0 and at most 20 detections, so it has masks to paste).
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _engine(device: str):
    from maskreview.core.model.engine import Engine, EngineSettings
    from maskreview.core.model.registry import DEMO_MODEL_DIR

    if (DEMO_MODEL_DIR / "model_final.pth").exists():
        return Engine("demo", settings=EngineSettings(device=device)), "demo model"
    import torch
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    out = Path(tempfile.mkdtemp(prefix="bench-internals-"))
    atexit.register(shutil.rmtree, out, True)
    cfg = get_cfg()
    cfg.merge_from_file(str(REPO / "resources/models/demo-r18-fpn.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    (out / "config.yaml").write_text(cfg.dump())
    torch.save(build_model(cfg).state_dict(), out / "model_final.pth")
    (out / "classes.json").write_text(json.dumps(["circle", "square", "triangle", "ring", "cross"]))
    settings = EngineSettings(device=device, score_thresh=0.0, max_detections=20)
    return Engine(str(out), settings=settings), "random-init demo architecture (20 detections)"


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from maskreview.core.model import internals as it
    from maskreview.core.model import internals_render as rr
    from maskreview.core.demo import make_scene

    engine, what = _engine(args.device)
    print(f"model: {what}, device {engine.device}", flush=True)
    scene = make_scene(0, 5)[0]
    big = np.kron(make_scene(0, 6)[0], np.ones((5, 7, 1), np.uint8))[:1200, :1600]
    rows = []
    for name, image in (("256 px scene", scene), (f"{big.shape[1]}x{big.shape[0]} image", big)):
        engine.predict_instances([image])  # warm-up
        t_pred = _best(lambda: engine.predict_instances([image]), args.repeat)
        t_cap = _best(lambda: it.capture(engine, image), args.repeat)
        rows.append((name, t_pred, t_cap))
    print(f"{'image':<20} {'predictor s':>12} {'capture s':>10} {'ratio':>6}")
    for name, tp, tc in rows:
        print(f"{name:<20} {tp:>12.3f} {tc:>10.3f} {tc / tp:>6.2f}")

    cap = it.capture(engine, scene)
    k = 0 if cap.num_instances else None
    draws = {
        "fpn p3": lambda: rr.fpn_view(cap, scene, "p3"),
        "rpn top 50": lambda: rr.rpn_view(cap, scene, 50),
        "roi grid + align vs pool": lambda: (rr.roi_grid_view(cap, scene, rv := it.roi_view(cap, cap.proposals.boxes[0])),
                                             rr.roi_compare_view(cap, rv)),
    }
    if k is not None:
        draws["mask head"] = lambda: rr.mask_view(cap, scene, k)
    print(f"{'view':<26} {'ms':>6}")
    worst = 0.0
    for name, fn in draws.items():
        ms = _best(fn, args.repeat) * 1000
        worst = max(worst, ms)
        print(f"{name:<26} {ms:>6.1f}")
    for name, tp, tc in rows:
        ratio = tc / tp
        print(f"RESULT internals capture vs predictor ({name}) | {ratio:.2f}x | <= 1.5x | {ratio <= 1.5}")
    print(f"RESULT internals slowest view drawing | {worst:.0f} ms | <= 100 ms | {worst <= 100}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
