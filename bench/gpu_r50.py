"""Seconds per image for Mask R-CNN R50-FPN at the model zoo's test size (800 px), on CUDA.

Target (issue #17.5): <= 0.043 s/img, the model zoo's figure for mask_rcnn_R_50_FPN_3x on a V100,
with decoding and writing included: a dataset run (``run_inference``: JPEG files decoded on
threads, batches of ``Engine.batch_size`` per forward pass, Detections written to FiftyOne). The
forward pass alone and a run one image per pass are printed beside it (where batching helps).
No zoo weights can be fetched offline, so the model has random weights. Their scores sit near
1/81, below the zoo's test threshold of 0.05, so the score threshold is 0: what survives NMS and
the drop of empty boxes (about 20 detections an image on the synthetic scenes; a trained model
keeps a few to a few dozen on COCO) goes through the mask head, mask pasting and the write. The
result (the engine's own batch) is appended to BENCHMARKS.md.

    python bench/gpu_r50.py [--images 50] [--batches 1,4] [--no-record] [--device cpu  (checks the script only)]
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


def random_r50(device: str, folder: Path):
    """The zoo's R50-FPN Mask R-CNN with seeded random weights (saved in ``folder``), on ``device``,
    score threshold 0 (see the module's docstring)."""
    import torch
    from detectron2.modeling import build_model

    from maskreview.core.model.engine import Engine, EngineSettings, build_cfg
    from maskreview.core.model.registry import resolve_model

    settings = EngineSettings(device=device, score_thresh=0.0, nms_thresh=0.5, max_detections=100)
    cfg = build_cfg(resolve_model(ZOO_NAME).config_file, settings)
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    weights = folder / "r50_random.pth"
    torch.save(build_model(cfg).state_dict(), weights)
    return Engine(ZOO_NAME, weights=str(weights), settings=settings)


def _images(n: int):
    """COCO-sized scenes (640x480) from the synthetic demo generator."""
    import cv2

    from maskreview.core.demo import make_scene

    out = []
    for i in range(n):
        image = make_scene(5, i, size=512)[0]
        out.append(cv2.resize(image, (640, 480), interpolation=cv2.INTER_LINEAR))
    return out


def _dataset_runs(engine, images, batches: set[int]) -> dict[int, float]:
    """Seconds per image of a whole dataset run over ``images`` written as JPEG files, for each
    number of images per forward pass in ``batches`` (the engine's own batch, the app's default, among them)."""
    import cv2

    from maskreview.core import store
    from maskreview.core.model.runs import run_inference

    fo = store.connect()
    out = {}
    with tempfile.TemporaryDirectory(prefix="maskreview-gpu-r50-") as tmp:
        paths = []
        for i, image in enumerate(images):
            paths.append(str(Path(tmp) / f"{i:04d}.jpg"))
            cv2.imwrite(paths[-1], image[:, :, ::-1])
        name = f"bench-gpu-r50-{time.strftime('%Y%m%d%H%M%S')}"
        dataset = fo.Dataset(name)
        try:
            dataset.add_samples([fo.Sample(filepath=p) for p in paths])
            dataset.compute_metadata()
            for batch in sorted(batches | {engine.batch_size}):
                run_inference(dataset.limit(2), engine, field="r50", overwrite=True, batch_size=batch)  # warm
                start = time.perf_counter()
                report = run_inference(dataset, engine, field="r50", overwrite=True, batch_size=batch)
                out[batch] = (time.perf_counter() - start) / len(paths)
                assert report.predicted == len(paths) and not report.failures, report.failures
        finally:
            fo.delete_dataset(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batches", default="1", help="images per forward pass to time besides the engine's own, e.g. 1,2,8")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to BENCHMARKS.md")
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu only checks the script (no record)")
    args = parser.parse_args(argv)

    import torch

    from maskreview.core.startup import quiet_library_warnings

    quiet_library_warnings()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench/gpu_r50.py: no CUDA GPU on this machine; it times R50-FPN on CUDA only "
              "(nothing measured, BENCHMARKS.md unchanged)", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory() as tmp:
        engine = random_r50(args.device, Path(tmp))
    cfg = engine.cfg
    images = _images(args.images)
    for image in images[: args.warmup]:
        engine.predict_instances([image])
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    sync()
    detections = 0
    start = time.perf_counter()
    for image in images:
        detections += len(engine.predict_instances([image])[0])  # .to("cpu") waits for the GPU
    forward = (time.perf_counter() - start) / len(images)
    runs = _dataset_runs(engine, images, {int(b) for b in args.batches.split(",") if b})
    seconds = runs[engine.batch_size]

    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU (script check only)"
    size = f"{cfg.INPUT.MIN_SIZE_TEST}/{cfg.INPUT.MAX_SIZE_TEST}"
    print(f"{ZOO_NAME} on {gpu}: {len(images)} images (640x480 JPEG, resized to short side "
          f"{cfg.INPUT.MIN_SIZE_TEST}), {detections / len(images):.0f} detections/img; zoo anchor "
          f"{ANCHOR_S_PER_IMG} s/img on a V100")
    print(f"  forward pass only, one image each: {forward:.4f} s/img")
    for batch, s_per_img in sorted(runs.items()):
        print(f"  dataset run (decode + predict + write), {batch} per pass: {s_per_img:.4f} s/img")
    print(f"RESULT R50-FPN s/img on {gpu}, decode and write included | {seconds:.4f} | <= {ANCHOR_S_PER_IMG} | "
          f"{'yes' if seconds <= ANCHOR_S_PER_IMG else 'NO'}")
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
