"""Dataset inference through the engine vs a bare detectron2 ``DefaultPredictor`` loop.

Both run the same model over the same images in the same process: the demo model when
``resources/models/demo/model_final.pth`` exists, else the demo architecture with random
weights. The engine's number includes decoding (overlapped on threads), turning outputs into
``fo.Detections`` and writing them to FiftyOne; the bare loop only decodes and predicts.
Target: engine / bare >= 1.0 (the app adds no overhead). Each path is timed in wall time and in
CPU time (this process, and mongod for the engine's writes when it is local: ``benchkit.Clock``),
since on a shared machine wall time mostly measures waiting for a core.

    python bench/bench_inference.py [--n 24] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
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


def bare_loop(cfg, weights: str, paths: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds for ``DefaultPredictor`` over ``paths`` (cv2 decode + predict, one by one)."""
    import cv2
    from detectron2.engine import DefaultPredictor

    cfg = cfg.clone()
    cfg.MODEL.WEIGHTS = weights
    predictor = DefaultPredictor(cfg)
    predictor(cv2.imread(paths[0]))  # warm-up
    with benchkit.Clock() as clock:
        for path in paths:
            predictor(cv2.imread(path))  # BGR, as DefaultPredictor expects
    return clock.wall, clock.cpu


def engine_run(engine, dataset, mongod: int | None) -> tuple[float, float, float]:
    """Wall and CPU seconds of ``run_inference`` (decode, predict, Detections, write), and the
    seconds it waited for decoding."""
    from maskreview.core.images import read_image
    from maskreview.core.model.runs import run_inference

    engine.predict(read_image(dataset.first().filepath))  # warm-up
    with benchkit.Clock(mongod) as clock:
        report = run_inference(dataset, engine, field="bench_predictions", overwrite=True)
    assert report.predicted == len(dataset) and not report.failures
    return clock.wall, clock.cpu, report.decode_wait_seconds


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
    mongod = benchkit.mongod_pid(os.environ.get("FIFTYONE_DATABASE_DIR"))
    load = os.getloadavg()
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
                wall, cpu, wait = engine_run(engine, dataset, mongod)
                ours.append((wall, cpu))
                waits.append(wait)
        finally:
            fo.delete_dataset(name)
    n = len(paths)
    bare_wall, bare_cpu = min(w for w, _ in bare), min(c for _, c in bare)
    ours_wall, ours_cpu = min(w for w, _ in ours), min(c for _, c in ours)
    ratio, ratio_cpu = bare_wall / ours_wall, bare_cpu / ours_cpu
    print(f"model: {what} ({model}), device {engine.device}, {n} images of 256 px, best of {args.rounds}, "
          f"torch threads {engine._torch.get_num_threads()}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in load)}; after: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    benchkit.table(("path", "wall s", "img/s", "CPU s"), [
        ("bare DefaultPredictor loop (decode+predict)", bare_wall, n / bare_wall, bare_cpu),
        ("engine run_inference (+ Detections + write)", ours_wall, n / ours_wall, ours_cpu)])
    print("rounds (wall/CPU s): bare " + ", ".join(f"{w:.1f}/{c:.1f}" for w, c in bare) + "; engine "
          + ", ".join(f"{w:.1f}/{c:.1f}" for w, c in ours))
    print(f"engine waited {min(waits):.2f} s for decoding; ratio engine/bare {ratio:.2f} wall, {ratio_cpu:.2f} CPU "
          "(target >= 1.0)")
    benchkit.result(f"inference throughput engine/bare ({engine.device}, wall)", f"{ratio:.2f}", ">= 1.0", ratio >= 1.0)
    benchkit.result(f"inference throughput engine/bare ({engine.device}, CPU)", f"{ratio_cpu:.2f}", ">= 1.0",
                    ratio_cpu >= 1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
