"""Dataset inference through the engine vs a bare detectron2 ``DefaultPredictor`` loop.

Both run the same model over the same images in the same process: the demo model when
``resources/models/demo/model_final.pth`` exists, else the demo architecture with random
weights. The engine's number includes decoding (overlapped on threads), turning outputs into
``fo.Detections`` and writing them to FiftyOne; the bare loop only decodes and predicts.
Target: engine / bare >= 1.0 (the app adds no overhead).

    python bench/bench_inference.py [--n 24] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import benchkit  # noqa: E402  (bench/ is on sys.path when a bench runs as a script)


def _model_dir(tmp: Path) -> tuple[str, str]:
    from maskreview.core.model.registry import DEMO_MODEL_DIR

    if (DEMO_MODEL_DIR / "model_final.pth").is_file():
        return "demo", "demo model"
    import torch
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from maskreview.core.demo import CLASSES

    cfg = get_cfg()
    cfg.merge_from_file(str(REPO / "resources" / "models" / "demo-r18-fpn.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    out = tmp / "random-demo-arch"
    out.mkdir()
    torch.save(build_model(cfg).state_dict(), out / "model_final.pth")
    (out / "config.yaml").write_text(cfg.dump())
    (out / "classes.json").write_text(json.dumps(list(CLASSES)))
    return str(out), "demo architecture, random weights"


def bare_loop(cfg, weights: str, paths: list[str]) -> float:
    """Seconds for ``DefaultPredictor`` over ``paths`` (cv2 decode + predict, one by one)."""
    import cv2
    from detectron2.engine import DefaultPredictor

    cfg = cfg.clone()
    cfg.MODEL.WEIGHTS = weights
    predictor = DefaultPredictor(cfg)
    predictor(cv2.imread(paths[0]))  # warm-up
    start = time.perf_counter()
    for path in paths:
        predictor(cv2.imread(path))  # BGR, as DefaultPredictor expects
    return time.perf_counter() - start


def engine_run(engine, dataset) -> tuple[float, float]:
    from maskreview.core.images import read_image
    from maskreview.core.model.runs import run_inference

    engine.predict(read_image(dataset.first().filepath))  # warm-up
    report = run_inference(dataset, engine, field="bench_predictions", overwrite=True)
    assert report.predicted == len(dataset) and not report.failures
    return report.seconds, report.decode_wait_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="number of demo scenes")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each counts")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    from maskreview.core import store
    from maskreview.core.demo import write_demo_dataset
    from maskreview.core.model.engine import Engine, EngineSettings
    from maskreview.core.sources import open_source

    fo = store.connect()
    with tempfile.TemporaryDirectory(prefix="maskreview-bench-") as tmp:
        tmp = Path(tmp)
        model, what = _model_dir(tmp)
        coco = write_demo_dataset(tmp / "data", n=args.n, seed=11)
        name = f"bench-inference-{time.strftime('%Y%m%d%H%M%S')}"
        dataset = open_source(coco, name=name)
        try:
            engine = Engine(model, settings=EngineSettings(device=args.device))
            paths = dataset.values("filepath")
            bare, ours, waits = [], [], []
            for _ in range(args.rounds):
                bare.append(bare_loop(engine.cfg, engine.weights, paths))
                seconds, wait = engine_run(engine, dataset)
                ours.append(seconds)
                waits.append(wait)
        finally:
            fo.delete_dataset(name)
    n = len(paths)
    bare_ips, ours_ips = n / min(bare), n / min(ours)
    ratio = ours_ips / bare_ips
    print(f"model: {what} ({model}), device {engine.device}, {n} images of 256 px, best of {args.rounds}")
    benchkit.table(("path", "seconds", "img/s"), [("bare DefaultPredictor loop (decode+predict)", min(bare), bare_ips),
                                                ("engine run_inference (+ Detections + write)", min(ours), ours_ips)])
    print(f"engine waited {min(waits):.2f} s for decoding; ratio engine/bare {ratio:.2f} (target >= 1.0)")
    benchkit.result(f"inference throughput engine/bare ({engine.device})", f"{ratio:.2f}", ">= 1.0", ratio >= 1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
