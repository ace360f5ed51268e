"""Seconds per image for Mask R-CNN R50-FPN at the model zoo's test size, on CUDA, via the engine.

Anchor: the detectron2 model zoo lists 0.043 s/img for mask_rcnn_R_50_FPN_3x on a V100.
No zoo weights can be fetched offline, so the model has random weights; with the zoo's
test thresholds (score 0.05, 100 detections) it still returns a full set of detections, so
the mask head and mask pasting do their usual work. The result is appended to BENCHMARKS.md.

    python bench/gpu_r50.py [--images 50] [--no-record]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ZOO_NAME = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x"
ANCHOR_S_PER_IMG = 0.043  # model zoo, V100
TABLE_HEADER = ("\n## Mask R-CNN R50-FPN on CUDA (`bench/gpu_r50.py`)\n\n"
                "| date | GPU | torch | images | test size | s/img | zoo anchor (V100) |\n"
                "|---|---|---|---|---|---|---|\n")


def _images(n: int):
    """COCO-sized scenes (640x480) from the synthetic demo generator."""
    import cv2

    from maskreview.core.demo import make_scene

    out = []
    for i in range(n):
        image = make_scene(5, i, size=512)[0]
        out.append(cv2.resize(image, (640, 480), interpolation=cv2.INTER_LINEAR))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to BENCHMARKS.md")
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu only checks the script (no record)")
    args = parser.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench/gpu_r50.py: no CUDA GPU on this machine; it times R50-FPN on CUDA only "
              "(nothing measured, BENCHMARKS.md unchanged)", file=sys.stderr)
        return 1

    from detectron2.modeling import build_model

    from maskreview.core.model.engine import Engine, EngineSettings, build_cfg
    from maskreview.core.model.registry import resolve_model

    settings = EngineSettings(device=args.device, score_thresh=0.05, nms_thresh=0.5, max_detections=100)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = build_cfg(resolve_model(ZOO_NAME).config_file, settings)
        cfg.MODEL.DEVICE = "cpu"
        torch.manual_seed(0)
        weights = Path(tmp) / "r50_random.pth"
        torch.save(build_model(cfg).state_dict(), weights)
        engine = Engine(ZOO_NAME, weights=str(weights), settings=settings)
    images = _images(args.images)
    for image in images[: args.warmup]:
        engine.predict_instances([image])
    if args.device == "cuda":
        torch.cuda.synchronize()
    detections = 0
    start = time.perf_counter()
    for image in images:
        detections += len(engine.predict_instances([image])[0])  # .to("cpu") waits for the GPU
    seconds = (time.perf_counter() - start) / len(images)

    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU (script check only)"
    size = f"{cfg.INPUT.MIN_SIZE_TEST}/{cfg.INPUT.MAX_SIZE_TEST}"
    print(f"{ZOO_NAME} on {gpu}: {seconds:.4f} s/img over {len(images)} images (640x480 resized to "
          f"short side {cfg.INPUT.MIN_SIZE_TEST}), {detections / len(images):.0f} detections/img; "
          f"zoo anchor {ANCHOR_S_PER_IMG} s/img on a V100")
    print(f"RESULT R50-FPN s/img on {gpu} | {seconds:.4f} | zoo V100 {ANCHOR_S_PER_IMG} | "
          f"{'yes' if seconds <= ANCHOR_S_PER_IMG else 'no'}")
    if not args.no_record and args.device == "cuda":
        path = REPO / "BENCHMARKS.md"
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        if TABLE_HEADER.strip() not in text:
            text = text.rstrip("\n") + "\n" + TABLE_HEADER
        row = (f"| {time.strftime('%Y-%m-%d')} | {gpu} | {torch.__version__} | {len(images)} | {size} | "
               f"{seconds:.4f} | {ANCHOR_S_PER_IMG} |\n")
        path.write_text(text.rstrip("\n") + "\n" + row)
        print(f"recorded in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
