"""Inputs for the bad-input catalogue (test_bad_input_catalogue.py): each builder writes one bad file
(or picks one bad argument set) into its case's folder and returns the command line to run."""

from __future__ import annotations

import json
import os
import pickle
import socket
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO

BASE = "catalogue-base"  # an imported dataset with ground truth and predictions; must stay untouched
COLLIDE = "collide"  # a dataset name that is also a folder in the case's working directory


# --------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------

@dataclass
class Shared:
    root: Path
    good_png: Path
    good_json: Path


@dataclass
class CaseDir:
    id: str
    dir: Path
    shared: Shared

    def path(self, suffix: str) -> Path:
        return self.dir / f"{self.id}{suffix}"

    def write(self, suffix: str, content: bytes | str) -> Path:
        path = self.path(suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    @property
    def marker(self) -> Path:
        """Created only if a crafted file manages to run code."""
        return self.dir / "CODE-RAN"


@dataclass(frozen=True)
class Case:
    id: str
    owner: str  # who fixes it when it fails (see /tmp/team/brief.md)
    build: Callable[[CaseDir], list[str]]
    names: tuple[str, ...] = ()  # the error line must contain one of these; default: the case id
    isolated: bool = False  # run as a real process (with ``env`` added to its environment)
    env: Callable[[CaseDir], dict] | None = None

    def __repr__(self) -> str:
        return self.id


def write_png(path: Path, size=(32, 32), color=(200, 30, 30)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def png_bytes(width: int, height: int, idat: bytes = zlib.compress(b"\0" * 4)) -> bytes:
    """A PNG whose header promises ``width x height`` pixels, with a tiny image stream."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def good_coco() -> dict:
    square = [[4.0, 4.0, 20.0, 4.0, 20.0, 20.0, 4.0, 20.0]]
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 32},
                   {"id": 2, "file_name": "b.png", "width": 32, "height": 32}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": square, "bbox": [4, 4, 16, 16],
             "area": 256, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 2, "segmentation": square, "bbox": [4, 4, 16, 16],
             "area": 256, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
    }


def coco_absolute_file_name(c: CaseDir) -> list[str]:
    outside = write_png(c.dir / "elsewhere" / f"{c.id}.png")
    return coco_case(image_entry(file_name=str(outside)))(c)


def rle(height: int, width: int) -> dict:
    """Compressed RLE of an 8x8 square in a ``height x width`` mask."""
    import numpy as np
    from pycocotools import mask as mask_utils

    bitmap = np.zeros((height, width), dtype=np.uint8, order="F")
    bitmap[2:10, 2:10] = 1
    encoded = mask_utils.encode(bitmap)
    return {"size": [height, width], "counts": encoded["counts"].decode()}


def coco_case(mutate: Callable[[dict], object] | None = None, raw: str | bytes | None = None,
              images: dict | None = None) -> Callable[[CaseDir], list[str]]:
    """A COCO file beside ``images/`` (a.png, b.png: 32x32), mutated or replaced by ``raw``."""
    def build(c: CaseDir) -> list[str]:
        for name, size in (images or {"a.png": (32, 32), "b.png": (32, 32)}).items():
            write_png(c.dir / "images" / name, size)
        if raw is not None:
            path = c.write(".json", raw)
        else:
            data = good_coco()
            if mutate is not None:
                data = mutate(data) or data
            path = c.write(".json", json.dumps(data))
        return ["import", str(path)]
    return build


def ann(**changes) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        data["annotations"][0].update(changes)
    return mutate


def image_entry(**changes) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        data["images"][0].update(changes)
    return mutate


def results_case(results: object | None = None, raw: str | None = None) -> Callable[[CaseDir], list[str]]:
    def build(c: CaseDir) -> list[str]:
        pred = c.write(".json", raw if raw is not None else json.dumps(results))
        return ["eval", "--gt", str(c.shared.good_json), "--pred", str(pred)]
    return build


def result(**changes) -> list[dict]:
    entry = {"image_id": 1, "category_id": 1, "segmentation": rle(32, 32), "score": 0.9}
    entry.update(changes)
    return [{k: v for k, v in entry.items() if v is not DROP}]


DROP = object()


class _RunsCode:
    """Unpickling this creates the case's marker file: the stand-in for any code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_pickle(c: CaseDir) -> bytes:
    return pickle.dumps({"model": {"w": _RunsCode(c.marker)}})


def evil_yaml(c: CaseDir) -> str:
    return (f"_BASE_: {REPO / 'resources' / 'models' / 'demo-r18-fpn.yaml'}\n"
            f"MODEL:\n  META_ARCHITECTURE: !!python/object/apply:builtins.open [{str(c.marker)!r}, w]\n")


def demo_state_dict() -> dict:
    import torch

    loaded = torch.load(REPO / "resources" / "models" / "demo" / "model_final.pth", weights_only=True)
    return dict(loaded.get("model", loaded))


def weights_case(make: Callable[[CaseDir], Path], *extra: str) -> Callable[[CaseDir], list[str]]:
    def build(c: CaseDir) -> list[str]:
        return ["infer", BASE, "--model", "demo", "--weights", str(make(c)), "--device", "cpu", *extra]
    return build


def torch_save(c: CaseDir, obj, suffix: str = ".pth") -> Path:
    import torch

    path = c.path(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def string_tensor(c: CaseDir) -> Path:
    sd = demo_state_dict()
    sd["backbone.bottom_up.stem.conv1.weight"] = "not a tensor"
    return torch_save(c, {"model": sd})


def wrong_class_count(c: CaseDir) -> Path:
    """The demo weights cut to 3 classes; the demo config has 5."""
    sd = demo_state_dict()
    cut = {"roi_heads.box_predictor.cls_score": 4, "roi_heads.box_predictor.bbox_pred": 12,
           "roi_heads.mask_head.predictor": 3}
    for key in list(sd):
        for prefix, rows in cut.items():
            if key.startswith(prefix + "."):
                sd[key] = sd[key][:rows].clone()
    return torch_save(c, {"model": sd})


def truncated_weights(c: CaseDir) -> Path:
    path = torch_save(c, {"model": {"w": __import__("torch").zeros(1000)}})
    path.write_bytes(path.read_bytes()[:1500])
    return path


def config_case(make: Callable[[CaseDir], Path], command: str = "infer") -> Callable[[CaseDir], list[str]]:
    def build(c: CaseDir) -> list[str]:
        model = str(make(c))
        if command == "train":
            return ["train", BASE, "--base", model, "--out", str(c.dir / "model-out"), "--iters", "1"]
        return ["infer", BASE, "--model", model, "--device", "cpu"]
    return build


def yaml_file(text: Callable[[CaseDir], str] | str) -> Callable[[CaseDir], Path]:
    return lambda c: c.write(".yaml", text(c) if callable(text) else text)


def base_chain(c: CaseDir) -> Path:
    evil = c.dir / "evil-base.yaml"
    evil.write_text(evil_yaml(c))
    return c.write(".yaml", f"_BASE_: {evil}\n")


def evil_model_dir(c: CaseDir) -> Path:
    folder = c.dir / c.id
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(evil_yaml(c))
    (folder / "classes.json").write_text(json.dumps(["circle", "square", "triangle", "ring", "cross"]))
    os.link(REPO / "resources" / "models" / "demo" / "model_final.pth", folder / "model_final.pth")
    return folder


def base_loop(c: CaseDir) -> Path:
    path = c.path(".yaml")
    path.write_text(f"_BASE_: {path}\n")
    return path


def args(*argv: str) -> Callable[[CaseDir], list[str]]:
    """Arguments only; ``{d}`` is the case folder, ``{png}`` a good image, ``{file}`` an existing file."""
    def build(c: CaseDir) -> list[str]:
        existing = c.write(".txt", "an existing file\n")
        return [a.format(d=c.dir, png=c.shared.good_png, file=existing, id=c.id) for a in argv]
    return build


def train(*argv: str) -> Callable[[CaseDir], list[str]]:
    return args("train", BASE, "--out", "{d}/model-out", "--iters", "1", *argv)


def infer(*argv: str) -> Callable[[CaseDir], list[str]]:
    return args("infer", BASE, "--device", "cpu", *argv)


def image_case(make: Callable[[CaseDir], Path], *extra: str, command: str = "import") -> Callable[[CaseDir], list[str]]:
    def build(c: CaseDir) -> list[str]:
        path = str(make(c))
        if command == "explain":
            return ["explain", path, "--out", str(c.dir / "explained"), "--device", "cpu", *extra]
        return [command, path, *extra]
    return build


def folder_with(*files: tuple[str, Callable[[Path], object]]) -> Callable[[CaseDir], Path]:
    def make(c: CaseDir) -> Path:
        folder = c.dir / c.id
        folder.mkdir(parents=True)
        for name, write in files:
            write(folder / name)
        return folder
    return make


def raw_file(content: bytes, suffix: str = ".png") -> Callable[[CaseDir], Path]:
    return lambda c: c.write(suffix, content)


def truncated_png(c: CaseDir) -> Path:
    good = write_png(c.path(".full.png"), (64, 64)).read_bytes()
    c.path(".full.png").unlink()
    return c.write(".png", good[:30])


def symlink_loop(c: CaseDir) -> Path:
    path = c.path(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(path.name, path)
    return path


def fifo(c: CaseDir) -> Path:
    path = c.path(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def unreadable(c: CaseDir) -> Path:
    path = write_png(c.path(".png"))
    path.chmod(0)
    return path


def export_case(out: Callable[[CaseDir], Path] | None = None, *extra: str) -> Callable[[CaseDir], list[str]]:
    def build(c: CaseDir) -> list[str]:
        target = out(c) if out else c.dir / "exported"
        return ["export", BASE, "--out", str(target), *extra]
    return build


def non_empty_folder(c: CaseDir) -> Path:
    c.write("/keep.txt", "already here\n")
    return c.dir / c.id


def resume_booby_trap(c: CaseDir) -> list[str]:
    work = c.dir / "model-out" / "work"
    work.mkdir(parents=True)
    (work / "model_0000000.pkl").write_bytes(pickle.dumps({"model": _RunsCode(c.marker)}))
    (work / "model_0000000.pth").write_bytes(pickle.dumps({"model": _RunsCode(c.marker)}))
    (work / "last_checkpoint").write_text("model_0000000.pkl")
    return ["train", BASE, "--out", str(c.dir / "model-out"), "--iters", "1", "--resume"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def collide(c: CaseDir) -> list[str]:
    write_png(c.dir / COLLIDE / "x.png")
    return ["export", COLLIDE, "--out", str(c.dir / "exported")]


CLOSED_PORT = closed_port()
NAN_BBOX_JSON = '{"images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 32}], "categories": [{"id": 1, ' \
            '"name": "c"}], "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [NaN, 1, 2, 3]}]}'
