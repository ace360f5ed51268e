"""Where models come from: zoo configs, cached weights, local model dirs.

A *model* is named by the user as one of (tried in this order, see ``_RESOLVERS``):

- ``demo``: the small Mask R-CNN this project trains itself (``resources/models/demo``);
- a model directory written by ``maskreview train`` (``config.yaml`` + ``model_final.pth`` +
  ``classes.json``), by path or by its folder name under the user's models dir;
- a model-zoo config name such as ``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x``;
- a detectron2 YAML file.

Reading a model's config and weights without running code from them is
:mod:`maskreview.core.model.safe_loading`'s.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from importlib.resources import files

from maskreview.core.errors import BadInputError, MaskreviewError
from maskreview.core.progress import Progress
from maskreview.core.store import user_cache_dir, user_data_dir

def _resources_dir() -> Path:
    """Top-level ``resources/``, shipped as the package ``maskreview.resources`` (pyproject package-dir):
    the checkout's folder in an editable install, the package's data in a wheel or a bundle."""

    return Path(str(files("maskreview.resources")))


RESOURCES = _resources_dir()
DEMO_MODEL_DIR = RESOURCES / "models" / "demo"
MODEL_DIR_FILES = ("config.yaml", "model_final.pth", "classes.json")
D2_URL_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"


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

def user_models_dir() -> Path:
    return user_data_dir() / "models"


def _registry_file() -> Path:
    return user_data_dir() / "local_models.json"


def register_local_model(path: str | os.PathLike) -> None:
    """Remember a model dir written by ``train`` so that ``maskreview models`` lists it."""
    path = str(Path(path).resolve())
    known = _registered_paths()
    if path not in known:
        _registry_file().parent.mkdir(parents=True, exist_ok=True)
        _registry_file().write_text(json.dumps([*known, path], indent=1))


def _registered_paths() -> list[str]:
    """The paths in the registry; a damaged registry (not JSON, not a list of paths) counts as empty."""
    try:
        known = json.loads(_registry_file().read_text()) if _registry_file().exists() else []
    except (OSError, ValueError):
        return []
    return [p for p in known if isinstance(p, str)] if isinstance(known, list) else []


def local_models() -> list[Path]:
    """Model dirs under the user's models dir and those ``train`` wrote elsewhere (still there)."""
    found = set()
    if user_models_dir().exists():
        found.update(p.parent.resolve() for p in user_models_dir().glob("*/config.yaml"))
    found.update(Path(p) for p in _registered_paths() if (Path(p) / "config.yaml").is_file())
    return sorted(found)


def read_model_dir(path: Path, name: str | None = None, kind: str = "dir") -> ModelSpec:
    classes_file = path / "classes.json"
    try:
        classes = json.loads(classes_file.read_text()) if classes_file.exists() else []
    except ValueError as exc:
        raise BadInputError(f"{classes_file}: not valid JSON ({exc})") from exc
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise BadInputError(f"{classes_file}: expected a JSON list of class names")
    weights = path / "model_final.pth"
    return ModelSpec(name or str(path), path / "config.yaml", str(weights) if weights.exists() else None,
                     classes, kind)


def _resolve_model_dir(name: str) -> ModelSpec | None:
    if name == "demo":
        if not (DEMO_MODEL_DIR / "model_final.pth").is_file():
            raise MaskreviewError(f"the demo model is missing from {DEMO_MODEL_DIR}; see README (Demo model)")
        return read_model_dir(DEMO_MODEL_DIR, "demo", "demo")
    for path in (Path(name).expanduser(), user_models_dir() / name):
        if path.is_dir() and (path / "config.yaml").is_file():
            return read_model_dir(path, name)
    return None


def _zoo_configs_dir() -> Path:
    from detectron2 import model_zoo

    return Path(model_zoo.__file__).parent / "configs"


def zoo_config_names(with_weights_only: bool = True) -> list[str]:
    """Zoo YAML configs by name (``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x``)."""
    from detectron2.model_zoo.model_zoo import _ModelZooUrls

    root = _zoo_configs_dir()
    names = {p.relative_to(root).with_suffix("").as_posix() for p in root.glob("*/*.yaml")}
    if with_weights_only:
        names &= set(_ModelZooUrls.CONFIG_PATH_TO_URL_SUFFIX)
    return sorted(names)


def zoo_weights_url(name: str) -> str | None:
    from detectron2.model_zoo.model_zoo import _ModelZooUrls

    return _ModelZooUrls.query(name.removesuffix(".yaml"))


def _resolve_zoo(name: str) -> ModelSpec | None:
    key = name.removesuffix(".yaml")
    root = _zoo_configs_dir()
    config = (root / f"{key}.yaml").resolve()
    if "/" not in key or not config.is_relative_to(root.resolve()) or not config.is_file():
        return None
    return ModelSpec(key, config, zoo_weights_url(key), [], "zoo")  # classes: see model_classes


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


def num_classes(cfg) -> int:
    if cfg.MODEL.META_ARCHITECTURE == "RetinaNet":
        return int(cfg.MODEL.RETINANET.NUM_CLASSES)
    return int(cfg.MODEL.ROI_HEADS.NUM_CLASSES)


def model_classes(spec: ModelSpec, cfg) -> list[str]:
    """The model's class names: its own list, else its test dataset's (COCO's 80 for the zoo)."""
    if spec.classes:
        return list(spec.classes)
    n = num_classes(cfg)
    for dataset in cfg.DATASETS.TEST:
        names = dataset_class_names(dataset)
        if len(names) == n:
            return names
    return [f"class_{i}" for i in range(n)]


def coco_class_names() -> list[str]:
    return dataset_class_names("coco_2017_val")


def dataset_class_names(dataset_name: str) -> list[str]:
    """``thing_classes`` of one of detectron2's builtin datasets ([] when it has none)."""
    import detectron2.data  # noqa: F401  registers the builtin metadata
    from detectron2.data import MetadataCatalog

    try:
        return list(MetadataCatalog.get(dataset_name).get("thing_classes", []))
    except (KeyError, AttributeError):
        return []


# --------------------------------------------------------------------------------------------
# weights: cache, download, safe loading
# --------------------------------------------------------------------------------------------

def weights_cache_dir() -> Path:
    return user_cache_dir() / "weights"


def cached_weights() -> list[Path]:
    d = weights_cache_dir()
    return sorted(p for p in d.glob("*") if p.suffix in (".pkl", ".pth")) if d.exists() else []


def is_url(weights: str) -> bool:
    return "://" in str(weights)


def download_url(url: str) -> str:
    """detectron2's ``detectron2://`` shorthand as the https URL it stands for."""
    return D2_URL_PREFIX + url[len("detectron2://"):] if url.startswith("detectron2://") else url


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_weights_path(url: str, cache_dir: Path | None = None) -> Path:
    url = download_url(url)
    name = hashlib.sha1(url.encode()).hexdigest()[:8] + "_" + url.rstrip("/").rsplit("/", 1)[-1]
    return (cache_dir or weights_cache_dir()) / name


def fetch_weights(url: str, cache_dir: Path | None = None, sha256: str | None = None,
                  progress: Progress | None = None) -> Path:
    """Download ``url`` into the cache once (atomic write, checksum kept beside it).

    A cached file is checked against its recorded SHA-256 before use, so a truncated or
    corrupted file is fetched again instead of being loaded. ``sha256``, when given, is what
    the download must hash to.
    """
    url = download_url(url)
    dest = cached_weights_path(url, cache_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    check = dest.with_name(dest.name + ".sha256")
    if dest.exists() and check.exists():
        recorded = check.read_text().strip()
        if file_sha256(dest) == recorded and (not sha256 or recorded == sha256):
            return dest
    progress = progress or Progress()
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.part")
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
            raise MaskreviewError(f"download of {url} stopped after {tmp.stat().st_size} of {total} bytes; "
                                  "try again, or download it yourself and pass it with --weights PATH")
        if sha256 and digest.hexdigest() != sha256:
            raise MaskreviewError(f"checksum mismatch for {url}: got {digest.hexdigest()}, expected {sha256}")
    except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise MaskreviewError(
            f"cannot download weights from {url} ({getattr(exc, 'reason', None) or exc}); "
            "download the file yourself and pass it with --weights PATH"
        ) from exc
    except BaseException:  # cancelled, checksum, interrupted: never leave a partial file
        tmp.unlink(missing_ok=True)
        raise
    finally:
        progress.finish()
    check.write_text(digest.hexdigest() + "\n")
    tmp.replace(dest)
    return dest
