"""Every checkpoint load goes through the safe loader, resumed training included (issues #12, #21.9)."""

import pickle

import pytest
import torch

from conftest import run_cli


class CreatesFile:
    """Unpickling this opens (creates) ``path``: what a booby-trapped checkpoint does."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("maskreview: error: ") and "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_weights_holding_a_string_where_a_tensor_belongs_are_one_line(suffix, tmp_path, tiny_model, demo_coco, fo):
    state = {k: v for k, v in torch.load(tiny_model / "model_final.pth", weights_only=True).items()}
    key = next(iter(state))
    state[key] = "not a tensor"
    weights = tmp_path / f"odd{suffix}"
    if suffix == ".pth":
        torch.save(state, weights)
    else:
        weights.write_bytes(pickle.dumps({"model": {k: v if isinstance(v, str) else v.numpy()
                                                    for k, v in state.items()}, "__author__": "test"}))
    before = set(fo.list_datasets())
    proc = run_cli("infer", str(demo_coco), "--model", str(tiny_model), "--weights", str(weights), "--device", "cpu")
    line = _one_error_line(proc)
    assert str(weights) in line and key in line and "str" in line
    assert set(fo.list_datasets()) == before


@pytest.fixture
def dataset(fo, demo_coco):
    from maskreview.core.sources import open_source

    return open_source(demo_coco, name="resume-trap")


def _plant(out, kind, pwned):
    work = out / "work"
    work.mkdir(parents=True)
    trap = work / f"model_0000099.{kind.split('-')[0]}"
    if kind == "pth":
        torch.save({"model": {}, "iteration": 99, "trap": CreatesFile(pwned)}, trap)
    else:  # detectron2's .pkl, or a .pth that is a plain pickle (torch's legacy format)
        trap.write_bytes(pickle.dumps({"model": {}, "__author__": "x", "trap": CreatesFile(pwned)}))
    (work / "last_checkpoint").write_text(trap.name)
    return trap


def _resume(dataset, tiny_model, out, *extra):
    return run_cli("train", dataset.name, "--base", str(tiny_model), "--out", str(out), "--resume", "--iters", "2",
                   "--holdout", "0", "--batch", "1", *extra, "--opts", "DATALOADER.NUM_WORKERS", "0", timeout=900)


@pytest.mark.parametrize("kind", ["pkl", "pth", "pth-plain-pickle"])
def test_resuming_from_a_booby_trapped_checkpoint_is_refused(kind, dataset, tiny_model, tmp_path):
    out, pwned = tmp_path / "out", tmp_path / "pwned"
    trap = _plant(out, kind, pwned)
    before = sorted(p.name for p in out.rglob("*"))
    line = _one_error_line(_resume(dataset, tiny_model, out))
    assert str(trap) in line and "--trust-checkpoint" in line
    assert not pwned.exists()
    assert sorted(p.name for p in out.rglob("*")) == before  # not even detectron2's logs


def test_trusting_a_resumed_checkpoint_runs_it(dataset, tiny_model, tmp_path):
    out, pwned = tmp_path / "out", tmp_path / "pwned"
    _plant(out, "pkl", pwned)
    _resume(dataset, tiny_model, out, "--trust-checkpoint")
    assert pwned.exists()  # the flag reaches the resume; what the file then holds is its own business


def test_resuming_our_own_checkpoint_still_works(dataset, tiny_model, tmp_path):
    from maskreview.core.model.training import TrainSettings, train

    settings = dict(batch=1, holdout=0, num_workers=0, checkpoint_period=1, log_period=1)
    train(dataset, "ground_truth", str(tiny_model), tmp_path / "out", TrainSettings(iters=2, **settings))
    assert (tmp_path / "out" / "work" / "last_checkpoint").read_text().strip() == "model_final.pth"
    report = train(dataset, "ground_truth", str(tiny_model), tmp_path / "out",
                   TrainSettings(iters=4, resume=True, **settings))
    assert [entry["iter"] for entry in report["losses"]] == [3, 4]  # went on from iteration 2
