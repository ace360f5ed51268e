"""Model registry, weights download/cache, and safe checkpoint loading (no network: file:// URLs)."""

import hashlib
import os
import pickle

import numpy as np
import pytest
import torch

from conftest import run_cli

from maskreview.core.model import registry as models
from maskreview.core.model import safe_loading
from maskreview.core.errors import BadInputError, CancelledError, MaskreviewError
from maskreview.core.progress import Progress

R50 = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x"


# ------------------------------------------------------------------------------ registry

def test_zoo_config_resolves_with_coco_classes():
    from maskreview.core.model.engine import EngineSettings, build_cfg

    spec = models.resolve_model(R50)
    assert spec.kind == "zoo" and spec.config_file.is_file()
    assert spec.weights == ("https://dl.fbaipublicfiles.com/detectron2/COCO-InstanceSegmentation/"
                            "mask_rcnn_R_50_FPN_3x/137849600/model_final_f10217.pkl")
    assert models.resolve_model(R50 + ".yaml").config_file == spec.config_file
    cfg = build_cfg(spec.config_file, EngineSettings(device="cpu"))
    classes = models.model_classes(spec, cfg)
    assert len(classes) == 80 == cfg.MODEL.ROI_HEADS.NUM_CLASSES
    assert classes[:3] == ["person", "bicycle", "car"]
    names = models.zoo_config_names()
    assert R50 in names and "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x" in names
    assert all(not n.startswith("Base-") for n in names)


def test_model_dir_yaml_and_unknown(tiny_model):
    spec = models.resolve_model(str(tiny_model))
    assert spec.kind == "dir" and spec.weights == str(tiny_model / "model_final.pth")
    assert spec.classes == ["circle", "square", "triangle", "ring", "cross"]
    assert models.resolve_model(str(tiny_model / "config.yaml")).kind == "yaml"
    with pytest.raises(BadInputError, match="unknown model"):
        models.resolve_model("no/such_model")


# ------------------------------------------------------------------------------ weights download

class Recorder(Progress):
    def __init__(self, cancel_after=None):
        super().__init__()
        self.cancel_after, self.updates = cancel_after, 0

    def on_update(self):
        self.updates += 1
        if self.cancel_after is not None and self.done >= self.cancel_after:
            self.cancel()


def _blob(path, size):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def test_fetch_weights_downloads_once_with_progress_and_checksum(tmp_path):
    src = _blob(tmp_path / "model_final_abc.pkl", 3 * (1 << 20) + 5)
    cache = tmp_path / "cache"
    progress = Recorder()
    got = models.fetch_weights(src.as_uri(), cache_dir=cache, progress=progress)
    assert got.parent == cache and got.name.endswith("_model_final_abc.pkl")
    assert got.read_bytes() == src.read_bytes()
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert (cache / (got.name + ".sha256")).read_text().strip() == digest
    assert progress.total == src.stat().st_size == progress.done and progress.updates >= 4
    assert sorted(p.name for p in cache.iterdir()) == [got.name, got.name + ".sha256"]

    src.rename(tmp_path / "moved.pkl")  # a cache hit does not touch the URL
    assert models.fetch_weights(src.as_uri(), cache_dir=cache) == got

    got.write_bytes(b"truncated")  # a corrupt cached file is fetched again
    with pytest.raises(MaskreviewError) as err:
        models.fetch_weights(src.as_uri(), cache_dir=cache)
    assert src.as_uri() in str(err.value) and "--weights PATH" in str(err.value)
    (tmp_path / "moved.pkl").rename(src)
    assert models.fetch_weights(src.as_uri(), cache_dir=cache).read_bytes() == src.read_bytes()

    with pytest.raises(MaskreviewError, match="checksum mismatch"):
        models.fetch_weights(src.as_uri(), cache_dir=tmp_path / "other", sha256="0" * 64)
    assert list((tmp_path / "other").iterdir()) == []


@pytest.mark.parametrize("url", ["file:///nonexistent/dir/model_final_x.pkl", "http://127.0.0.1:9/model_final_x.pkl"])
def test_fetch_weights_offline_names_url_and_option(tmp_path, url):
    with pytest.raises(MaskreviewError) as err:
        models.fetch_weights(url, cache_dir=tmp_path)
    message = str(err.value)
    assert url in message and "--weights PATH" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_cancelled_download_leaves_no_partial_file(tmp_path):
    src = _blob(tmp_path / "big.pth", 4 << 20)
    cache = tmp_path / "cache"
    with pytest.raises(CancelledError):
        models.fetch_weights(src.as_uri(), cache_dir=cache, progress=Recorder(cancel_after=1 << 20))
    assert list(cache.iterdir()) == []


def test_detectron2_scheme_maps_to_download_url():
    assert models.download_url("detectron2://ImageNetPretrained/MSRA/R-50.pkl") == \
        "https://dl.fbaipublicfiles.com/detectron2/ImageNetPretrained/MSRA/R-50.pkl"


# ------------------------------------------------------------------------------ safe loading

class WriteFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class RunCommand:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class NotATensor:
    pass


@pytest.mark.parametrize("trap", [WriteFile, RunCommand])
def test_booby_trapped_pickle_is_refused_and_has_no_effect(tmp_path, trap):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "model_final_trap.pkl"
    payload = {"model": {"w": np.zeros(3, np.float32), "x": trap(str(marker))}, "__author__": "x"}
    ckpt.write_bytes(pickle.dumps(payload))
    with pytest.raises(safe_loading.UntrustedCheckpointError) as err:
        safe_loading.load_checkpoint_file(ckpt)
    message = str(err.value)
    assert "--trust-checkpoint" in message and ("open" in message or "system" in message)
    assert not marker.exists()


def test_pth_with_an_object_needs_trust(tmp_path):
    ckpt = tmp_path / "model.pth"
    torch.save({"model": {"w": torch.ones(2)}, "extra": NotATensor()}, ckpt)
    with pytest.raises(safe_loading.UntrustedCheckpointError, match=r"NotATensor.*--trust-checkpoint"):
        safe_loading.load_checkpoint_file(ckpt)
    loaded = safe_loading.load_checkpoint_file(ckpt, trust_checkpoint=True)
    assert isinstance(loaded["extra"], NotATensor) and torch.equal(loaded["model"]["w"], torch.ones(2))


@pytest.mark.parametrize("protocol", [2, 4])
def test_detectron2_pkl_of_numpy_arrays_loads(tmp_path, protocol):
    arrays = {"backbone.conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
              "roi_heads.score": np.float64(0.5), "ids": np.array([1, 2], np.int64)}
    raw = pickle.dumps({"model": arrays, "__author__": "Detectron2 Model Zoo"}, protocol=protocol)
    if protocol == 2:  # as written by numpy 1.x, which the zoo's files were
        raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    (tmp_path / "z.pkl").write_bytes(raw)
    loaded = safe_loading.load_checkpoint_file(tmp_path / "z.pkl")
    assert loaded["__author__"] == "Detectron2 Model Zoo"
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded["model"][key], value)


def test_caffe2_blobs_pkl_drops_momentum(tmp_path):
    blobs = {"conv1_w": np.ones((2, 2), np.float32), "conv1_w_momentum": np.zeros((2, 2), np.float32)}
    (tmp_path / "c2.pkl").write_bytes(pickle.dumps({"blobs": blobs}, protocol=2))
    loaded = safe_loading.load_checkpoint_file(tmp_path / "c2.pkl")
    assert list(loaded["model"]) == ["conv1_w"] and loaded["matching_heuristics"] is True


@pytest.mark.parametrize("name,content,fragment", [
    ("gone.pth", None, "weights file not found"),
    ("empty.pth", b"", "empty weights file"),
    ("junk.pth", b"not a checkpoint at all" * 10, "corrupt or not a checkpoint"),
    ("junk.pkl", b"\x80\x04junk", "corrupt or not a checkpoint"),
    ("list.pth", "list", "not a state dict"),
])
def test_bad_weights_files(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content == "list":
        torch.save([torch.zeros(1)], path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInputError, match=fragment) as err:
        safe_loading.load_checkpoint_file(path)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------ `maskreview models`

def test_models_command_lists_zoo_cached_and_local(tmp_path, tiny_model):
    src = _blob(tmp_path / "model_final_f10217.pkl", 1000)
    cached = models.fetch_weights(src.as_uri())  # the tests' private cache dir, shared with the CLI
    models.register_local_model(tiny_model)
    out = run_cli("models", check=True, timeout=900).stdout
    assert "demo" in out.splitlines()[1]
    local = out[out.index("local model folders:"):out.index("cached weights:")]
    cache = out[out.index("cached weights:"):out.index("model-zoo configs")]
    zoo = out[out.index("model-zoo configs"):]
    assert str(tiny_model.resolve()) in local
    assert str(cached) in cache
    assert f"  {R50}\n" in zoo or f"  {R50}  (" in zoo
    assert len(zoo.splitlines()) > 40
