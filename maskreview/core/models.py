"""Where models come from: zoo configs, cached weights, local model dirs, and safe loading.

A *model* is named by the user as one of (tried in this order, see ``_RESOLVERS``):

- ``demo``: the small Mask R-CNN this project trains itself (``resources/models/demo``);
- a model directory written by ``maskreview train`` (``config.yaml`` + ``model_final.pth`` +
  ``classes.json``);
- a model-zoo config name such as ``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x``;
- a detectron2 YAML file.

Weights load safely: ``.pth`` with ``torch.load(weights_only=True)``; detectron2's ``.pkl``
pickles with an unpickler that admits only numpy arrays and plain containers. Anything else
needs ``trust_checkpoint=True`` (``--trust-checkpoint``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from maskreview.core.errors import BadInputError, MaskreviewError
from maskreview.core.progress import Progress
from maskreview.core.store import user_cache_dir

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DEMO_MODEL_DIR = RESOURCES / "models" / "demo"
MODEL_DIR_FILES = ("config.yaml", "model_final.pth", "classes.json")


@dataclass
class ModelSpec:
    """Everything needed to build a predictor: a config, weights, class names."""

    name: str
    config_file: Path
    weights: str | None  # local path or URL
    classes: list[str] = field(default_factory=list)
    kind: str = "yaml"  # demo | dir | zoo | yaml


# --------------------------------------------------------------------------------------------
# resolving a model name
# --------------------------------------------------------------------------------------------

def _resolve_model_dir(name: str) -> ModelSpec | None:
    path = DEMO_MODEL_DIR if name == "demo" else Path(name).expanduser()
    if not (path.is_dir() and (path / "config.yaml").is_file()):
        if name == "demo":
            raise MaskreviewError(f"the demo model is missing from {DEMO_MODEL_DIR}; see README (Demo model)")
        return None
    classes = json.loads((path / "classes.json").read_text()) if (path / "classes.json").exists() else []
    weights = path / "model_final.pth"
    return ModelSpec(name, path / "config.yaml", str(weights) if weights.exists() else None, classes,
                     "demo" if name == "demo" else "dir")


def zoo_config_names() -> list[str]:
    from detectron2.model_zoo.model_zoo import _ModelZooUrls

    return sorted(k.removesuffix(".yaml") for k in _ModelZooUrls.CONFIG_PATH_TO_URL_SUFFIX)


def _resolve_zoo(name: str) -> ModelSpec | None:
    from detectron2 import model_zoo
    from detectron2.model_zoo.model_zoo import _ModelZooUrls

    key = name if name.endswith(".yaml") else name + ".yaml"
    if key not in _ModelZooUrls.CONFIG_PATH_TO_URL_SUFFIX:
        return None
    return ModelSpec(name, Path(model_zoo.get_config_file(key)), model_zoo.get_checkpoint_url(key),
                     coco_class_names() if key.startswith("COCO") else [], "zoo")


def _resolve_yaml(name: str) -> ModelSpec | None:
    path = Path(name).expanduser()
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        return None
    return ModelSpec(name, path, None, [], "yaml")


_RESOLVERS: list[Callable[[str], ModelSpec | None]] = [_resolve_model_dir, _resolve_zoo, _resolve_yaml]


def resolve_model(name: str) -> ModelSpec:
    for resolver in _RESOLVERS:
        spec = resolver(name)
        if spec is not None:
            return spec
    raise BadInputError(
        f"{name}: unknown model; give 'demo', a model folder from 'maskreview train', a detectron2 "
        "YAML file or a model-zoo name (see 'maskreview models')"
    )


def coco_class_names() -> list[str]:
    import detectron2.data  # noqa: F401  registers the builtin COCO metadata
    from detectron2.data import MetadataCatalog

    return list(MetadataCatalog.get("coco_2017_val").thing_classes)


def local_models(root: Path | None = None) -> list[Path]:
    """Model folders under the user's models dir (where ``train`` writes by default)."""
    root = root or user_cache_dir().parent / "models"
    return sorted(p.parent for p in root.glob("*/config.yaml")) if root.exists() else []


# --------------------------------------------------------------------------------------------
# weights: cache, download, safe loading
# --------------------------------------------------------------------------------------------

def weights_cache_dir() -> Path:
    return user_cache_dir() / "weights"


def cached_weights() -> list[Path]:
    d = weights_cache_dir()
    return sorted(p for p in d.glob("*") if p.suffix in (".pkl", ".pth")) if d.exists() else []


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_weights(url: str, cache_dir: Path | None = None, sha256: str | None = None,
                  progress: Progress | None = None) -> Path:
    """Download ``url`` into the cache once (atomic write, checksum kept beside it).

    A cached file is checked against its recorded SHA-256 before use, so a truncated or
    corrupted download is fetched again instead of being loaded.
    """
    cache_dir = cache_dir or weights_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(url.encode()).hexdigest()[:8] + "_" + url.rstrip("/").rsplit("/", 1)[-1]
    dest, check = cache_dir / name, cache_dir / (name + ".sha256")
    if dest.exists() and check.exists() and file_sha256(dest) == check.read_text().strip():
        return dest
    progress = progress or Progress()
    tmp = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            progress.start(total, f"downloading {url.rsplit('/', 1)[-1]}")
            while chunk := resp.read(1 << 20):
                progress.check()
                out.write(chunk)
                digest.update(chunk)
                progress.advance(len(chunk))
        if total and tmp.stat().st_size != total:
            raise MaskreviewError(f"download of {url} stopped after {tmp.stat().st_size} of {total} bytes")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        raise MaskreviewError(
            f"cannot download weights from {url} ({getattr(exc, 'reason', exc)}); "
            "download the file yourself and pass it with --weights PATH"
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        progress.finish()
    if sha256 and digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise MaskreviewError(f"checksum mismatch for {url}: got {digest.hexdigest()}, expected {sha256}")
    tmp.replace(dest)
    check.write_text(digest.hexdigest() + "\n")
    return dest


class UntrustedCheckpointError(MaskreviewError):
    pass


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays, numpy scalars and plain containers; refuses every other global."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
        ("builtins", "bytearray"), ("builtins", "slice"), ("builtins", "complex"),
        ("codecs", "encode"),  # numpy arrays pickled by Python 2 carry their bytes through this
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise UntrustedCheckpointError(
            f"checkpoint wants to load {module}.{name}, which is not a numpy array or plain data; "
            "refusing (pass --trust-checkpoint only if you trust where the file came from)"
        )


def load_pickle_safely(data: bytes):
    return _ArraysOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def load_checkpoint_file(path: str | os.PathLike, trust_checkpoint: bool = False) -> dict:
    """Read a checkpoint into ``{"model": state_dict, ...}`` without running code from it."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: weights file not found")
    try:
        if path.suffix == ".pkl":
            raw = path.read_bytes()
            data = pickle.loads(raw, encoding="latin1") if trust_checkpoint else load_pickle_safely(raw)
            if not isinstance(data, dict):
                raise BadInputError(f"{path}: not a detectron2 checkpoint (a {type(data).__name__})")
            if "model" in data and "__author__" in data:
                return data
            data = data.get("blobs", data)
            data = {k: v for k, v in data.items() if not k.endswith("_momentum")}
            return {"model": data, "__author__": "Caffe2", "matching_heuristics": True}
        loaded = torch.load(path, map_location="cpu", weights_only=not trust_checkpoint)
    except UntrustedCheckpointError:
        raise
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc):
            raise UntrustedCheckpointError(
                f"{path}: holds more than tensors and plain data; refusing "
                "(pass --trust-checkpoint only if you trust where the file came from)"
            ) from exc
        raise BadInputError(f"{path}: corrupt or not a checkpoint ({exc})") from exc
    except (EOFError, RuntimeError, ValueError, OSError) as exc:
        raise BadInputError(f"{path}: corrupt or not a checkpoint ({exc})") from exc
    if not isinstance(loaded, dict):
        raise BadInputError(f"{path}: not a state dict (a {type(loaded).__name__})")
    return loaded if "model" in loaded else {"model": loaded}


def make_checkpointer(model, trust_checkpoint: bool = False):
    """A detectron2 ``DetectionCheckpointer`` whose file reading goes through safe loading."""
    from detectron2.checkpoint import DetectionCheckpointer

    class SafeCheckpointer(DetectionCheckpointer):
        def _load_file(self, filename):
            return load_checkpoint_file(filename, trust_checkpoint)

    return SafeCheckpointer(model)
