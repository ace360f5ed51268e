"""detectron2's launcher on CPU: two processes joined by gloo on loopback (#19.2).

``train --num-gpus 2``: DDP (each rank half of the batch); the loss falls, every rank ends with
the same parameters, and one model folder is written, by rank 0. ``infer --num-gpus 2``: each rank
takes a shard; every sample is written once, with a single run's labels.
"""

from __future__ import annotations

import json

from conftest import REPO, run_cli
from test_shards import _cli, _finish, labels_by_path, revisions

N_IMAGES = 10


def test_two_process_training_falls_in_loss_and_rank_0_writes_one_model_folder(fo, tmp_path):
    from maskreview.core.demo import write_demo_dataset

    coco = write_demo_dataset(tmp_path / "scenes", n=12, seed=4, size=128)
    out = tmp_path / "model"
    proc = run_cli("train", str(coco), "--base", str(REPO / "resources/models/demo-r18-fpn.yaml"), "--out", str(out),
                   "--iters", "8", "--batch", "2", "--log-period", "2", "--holdout", "0",
                   "--num-gpus", "2", "--dist-url", "auto", "--opts", "SEED", "3", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "training.json").read_text())
    assert report["distributed"] == {"world_size": 2, "backend": "gloo", "written_by_rank": 0,
                                     "same_parameters_on_every_rank": True}
    assert report["probe_loss_after"] < report["probe_loss_before"], report
    assert sorted(p.name for p in out.iterdir()) == ["classes.json", "config.yaml", "model_final.pth",
                                                     "training.json", "work"]
    assert "Making batched data loader with batch_size=1" in proc.stdout + proc.stderr  # 2 images over 2 ranks
    assert "model written to" in proc.stdout


def test_a_batch_that_does_not_split_over_the_processes_is_one_line(fo, demo_coco, tmp_path):
    proc = run_cli("train", str(demo_coco), "--base", str(REPO / "resources/models/demo-r18-fpn.yaml"),
                   "--out", str(tmp_path / "m"), "--iters", "2", "--batch", "3", "--num-gpus", "2")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "must split evenly over the 2 processes" in proc.stderr and "--batch 2" in proc.stderr


def test_two_process_inference_covers_each_sample_once_with_a_single_runs_labels(fo, tmp_path):
    from maskreview.core.demo import write_demo_dataset
    from maskreview.core.sources import open_source

    coco = write_demo_dataset(tmp_path / "scenes", n=N_IMAGES, seed=12, size=128)
    dataset = open_source(str(coco), name="ranks")
    single = dataset.clone("ranks-single")
    infer = ("--model", "demo", "--device", "cpu", "--threads", "1")  # labels to the bit: one thread count for all
    reference = _cli("infer", "ranks-single", *infer)  # at the same time: the suite's machine has 2 cores
    proc = run_cli("infer", "ranks", *infer, "--num-gpus", "2", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "shard 0/2: predicted" in proc.stdout and "shard 1/2: predicted" in proc.stdout, proc.stdout
    _finish(reference)
    dataset.reload()
    assert revisions(dataset) == [1] * N_IMAGES
    ours, theirs = labels_by_path(dataset, "predictions"), labels_by_path(single, "predictions")
    assert sum(map(len, theirs.values())) > N_IMAGES and ours == theirs
