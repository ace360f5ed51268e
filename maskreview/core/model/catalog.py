"""Every model the user can pick, described without building any (for the GUI's model picker).

The demo model, model folders written by ``train`` (the user's models dir, registered folders
and recently used ones), model-zoo configs whose weights are cached, and the other zoo configs
(their weights download on first use). Each entry has its classes and, for a trained folder,
the held-out mAP from its ``training.json`` (and the base model's on the same samples when the
fine-tune dialog measured it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from maskreview.core.errors import MaskreviewError
from maskreview.core.model.registry import coco_class_names, model_classes, read_model_dir, resolve_model
from maskreview.core.model.safe_loading import load_config
from maskreview.core.model import registry as models

KIND_NAMES = {"demo": "demo model", "dir": "trained folder", "cached": "zoo (weights cached)",
              "zoo": "zoo (needs download)", "yaml": "config file"}


@dataclass
class ModelEntry:
    name: str  # what resolve_model takes
    kind: str  # demo | dir | cached | zoo | yaml
    classes: list[str] = field(default_factory=list)
    path: str = ""
    held_out_map: float | None = None
    base_held_out_map: float | None = None
    held_out_samples: int | None = None
    trained_from: str | None = None

    @property
    def needs_download(self) -> bool:
        return self.kind == "zoo"

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, self.kind)


def _training_numbers(folder: Path, entry: ModelEntry) -> None:
    try:
        report = json.loads((folder / "training.json").read_text())
    except (OSError, ValueError):
        return
    if not isinstance(report, dict):
        return
    held, base = report.get("held_out_eval") or {}, report.get("base_held_out_eval") or {}
    entry.held_out_map = held.get("mAP") if isinstance(held, dict) else None
    entry.base_held_out_map = base.get("mAP") if isinstance(base, dict) else None
    entry.held_out_samples = report.get("held_out_samples")
    entry.trained_from = report.get("base")


def folder_entry(folder: str | Path, kind: str = "dir", name: str | None = None) -> ModelEntry | None:

    folder = Path(folder)
    if not (folder / "config.yaml").is_file():
        return None
    try:
        spec = read_model_dir(folder, name or str(folder), kind)
    except MaskreviewError:
        return None
    entry = ModelEntry(spec.name, kind, list(spec.classes), str(folder))
    _training_numbers(folder, entry)
    return entry


def zoo_classes(name: str) -> list[str]:
    """A zoo config's classes: COCO's 80 for the COCO configs, else those its test set names."""

    if name.startswith("COCO-"):
        return coco_class_names()
    try:
        spec = resolve_model(name)
        return model_classes(spec, load_config(spec.config_file))
    except MaskreviewError:
        return []


def catalog(recent: list[str] = (), with_zoo: bool = True) -> list[ModelEntry]:
    """The demo model, trained folders (recently used first), cached zoo weights, other zoo configs."""

    entries = [e for e in [folder_entry(models.DEMO_MODEL_DIR, "demo", "demo")] if e is not None]
    seen = {"demo"}
    folders = [r for r in recent if r not in seen and Path(r).is_dir()]
    folders += [str(p) for p in models.local_models()]
    for folder in folders:
        key = str(Path(folder).resolve())
        if key in seen:
            continue
        seen.add(key)
        entry = folder_entry(folder)
        if entry is not None:
            entries.append(entry)
    for path in [r for r in recent if r.lower().endswith((".yaml", ".yml")) and Path(r).is_file()]:
        entries.append(ModelEntry(path, "yaml", [], path))
    if not with_zoo:
        return entries
    try:
        names = models.zoo_config_names()
    except ImportError:  # detectron2 missing: no zoo
        return entries
    zoo = []
    for name in names:
        url = models.zoo_weights_url(name)
        cached = bool(url) and models.cached_weights_path(url).exists()
        zoo.append(ModelEntry(name, "cached" if cached else "zoo", zoo_classes(name),
                              str(models.cached_weights_path(url)) if cached else (url or "")))
    # cached weights first, then the configs that predict masks (what maskreview reviews)
    return entries + sorted(zoo, key=lambda e: (e.kind != "cached", "InstanceSegmentation" not in e.name))


def shared_classes(model_classes: list[str], dataset_classes: list[str]) -> list[str]:
    return [c for c in model_classes if c in set(dataset_classes)]
