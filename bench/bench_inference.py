"""Dataset inference as the window runs it (the model worker process) vs a bare detectron2 ``DefaultPredictor`` loop.

Both run the same model over the same images: the demo model when
``resources/models/demo/model_final.pth`` exists, else the demo architecture with random
weights. Ours is what the window does: a ``run`` request to the model worker
(``core.model.worker``, started as the app starts it: ``worker_client.shared_client``, niced,
on the CPU one image per core at once, one torch thread each: ``runs.cpu_lanes``), turns the
outputs into ``fo.Detections``, writes them to FiftyOne, snapshots the field for undo and reports
progress back over the pipe; its model is loaded by a warm-up request first (the window keeps
it loaded between runs). The peer decodes (``cv2.imread``) and predicts, one by one, in this
process, warmed up too. Rounds alternate which goes first; each round's ratio is printed and the
target (ours / bare >= 1.0: the app adds no overhead) counts as met only if every round meets it.
Each path is timed in wall time and in CPU time (this process, the worker, and mongod for the
writes when it is local: ``benchkit.Clock``), since on a shared machine wall time mostly
measures waiting for a core.

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


def worker_run(client, dataset, model: str, settings, ids=None, mongod: int | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one ``run`` request to the model worker (decode, predict,
    Detections, write, the field's snapshots), as ``gui.model_runs`` sends it."""
    with benchkit.Clock(mongod) as clock:
        result = client.call("run", dataset=dataset.name, ids=ids, model=model, weights=None, settings=settings,
                             field="bench_predictions", overwrite=True, only_missing=False, trust_checkpoint=False)
    want = len(ids) if ids is not None else len(dataset)
    assert result["status"] == "done" and result["report"].predicted == want and not result["report"].failures, result
    return clock.wall, clock.cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="number of demo scenes")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each counts")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    from maskreview.core import store
    from maskreview.core.demo import write_demo_dataset
    from maskreview.core.model.engine import EngineSettings, build_cfg
    from maskreview.core.model.registry import resolve_model
    from maskreview.core.model.worker_client import shared_client
    from maskreview.core.sources import open_source

    fo = store.connect()
    mongod = benchkit.mongod_pid(os.environ.get("FIFTYONE_DATABASE_DIR"))
    load = os.getloadavg()
    client = shared_client()  # the window's worker, started as the app starts it
    with tempfile.TemporaryDirectory(prefix="maskreview-bench-") as tmp:
        tmp = Path(tmp)
        model, what = _model_dir(tmp)
        coco = write_demo_dataset(tmp / "data", n=args.n, seed=11)
        name = f"bench-inference-{time.strftime('%Y%m%d%H%M%S')}"
        dataset = open_source(coco, name=name)
        try:
            settings = EngineSettings(device=args.device)
            spec = resolve_model(model)
            cfg = build_cfg(spec.config_file, settings)
            paths = dataset.values("filepath")
            worker_run(client, dataset, model, settings, ids=dataset.values("id")[:1])  # starts it, loads the model
            bare, ours = [], []
            for r in range(args.rounds):
                for path in (("bare", "ours") if r % 2 == 0 else ("ours", "bare")):
                    if path == "bare":
                        bare.append(bare_loop(cfg, str(spec.weights or cfg.MODEL.WEIGHTS), paths))
                    else:
                        ours.append(worker_run(client, dataset, model, settings, mongod=mongod))
            niceness = os.getpriority(os.PRIO_PROCESS, client.pid)
        finally:
            client.close()
            fo.delete_dataset(name)
    import torch

    n = len(paths)
    ratios = [(b[0] / o[0], b[1] / o[1]) for b, o in zip(bare, ours)]
    print(f"model: {what} ({model}), device {cfg.MODEL.DEVICE}, {n} images of 256 px, {args.rounds} rounds; "
          f"bare: torch threads {torch.get_num_threads()}; worker: nice {niceness}, on the CPU {os.cpu_count()} "
          "images at once (one per core when niced), one torch thread each")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in load)}; after: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    rows = []
    for r, (b, o) in enumerate(zip(bare, ours)):
        rows.append((f"round {r + 1}: bare DefaultPredictor loop (decode+predict)", b[0], n / b[0], b[1]))
        rows.append((f"round {r + 1}: model worker run (+ Detections, write, snapshots)", o[0], n / o[0], o[1]))
    benchkit.table(("path", "wall s", "img/s", "CPU s"), rows)
    print("ratio ours/bare per round (wall, CPU): " + ", ".join(f"{w:.2f}, {c:.2f}" for w, c in ratios)
          + " (target >= 1.0 in every round)")
    worst, worst_cpu = min(w for w, _ in ratios), min(c for _, c in ratios)
    device = cfg.MODEL.DEVICE
    benchkit.result(f"inference throughput worker/bare ({device}, wall, worst of {len(ratios)} rounds)", f"{worst:.2f}",
                    ">= 1.0", worst >= 1.0)
    benchkit.result(f"inference throughput worker/bare ({device}, CPU, worst of {len(ratios)} rounds)",
                    f"{worst_cpu:.2f}", ">= 1.0", worst_cpu >= 1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
