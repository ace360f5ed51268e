"""Where a GPU dataset run's time goes: cProfile of ``run_inference``'s own thread at 1 and 8
images a pass, and the seconds an image spent in the forward pass (``Engine.infer``).

Run on a lent GPU machine by ``PROF=1 bash bench/gpu_device.sh``; ``DEV=cpu N=3 python
bench/gpu_profile.py`` checks the script here. Settings and model as ``bench/gpu_r50.py``.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]


def main() -> None:
    import cv2
    import torch

    import gpu_r50
    from maskreview.core import store
    from maskreview.core.model.runs import run_inference
    from maskreview.core.startup import quiet_library_warnings

    quiet_library_warnings()
    device, n = os.environ.get("DEV", "cuda"), int(os.environ.get("N", "60"))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    tmp = Path(tempfile.mkdtemp(prefix="maskreview-gpu-profile-"))
    engine = gpu_r50.random_r50(device, tmp)
    fo = store.connect()
    paths = []
    for i, image in enumerate(gpu_r50._images(n)):
        paths.append(str(tmp / f"{i:04d}.jpg"))
        cv2.imwrite(paths[-1], image[:, :, ::-1])
    dataset = fo.Dataset(f"gpu-profile-{time.strftime('%Y%m%d%H%M%S')}")
    try:
        dataset.add_samples([fo.Sample(filepath=p) for p in paths])
        dataset.compute_metadata()
        run_inference(dataset.limit(4), engine, field="r", overwrite=True, batch_size=2)  # warm
        for batch in (1, 8) if device == "cuda" else (1, 2):
            forward = [0.0]
            infer = engine.infer

            def timed(inputs, infer=infer):
                start = time.perf_counter()
                out = infer(inputs)
                sync()
                forward[0] += time.perf_counter() - start
                return out

            engine.infer = timed
            profile = cProfile.Profile()
            start = time.perf_counter()
            profile.enable()
            report = run_inference(dataset, engine, field="r", overwrite=True, batch_size=batch)
            profile.disable()
            total = time.perf_counter() - start
            del engine.infer
            print(f"\n=== {batch} a pass: {total / n:.4f} s/img; forward pass {forward[0] / n:.4f} s/img; "
                  f"waiting for decoded images {report.decode_wait_seconds / n:.4f} s/img")
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(15)
            print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
    finally:
        fo.delete_dataset(dataset.name)


if __name__ == "__main__":
    main()
