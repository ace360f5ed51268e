"""The bad-input catalogue (issue 12, point 5): every row is an input a new user could try.

Each row writes its own file (or picks its own arguments) and must end the same way: exit code 2,
exactly one line on stderr (``maskreview: error: ...``) that names the input, no traceback
anywhere, and nothing changed: no new, removed or modified dataset, and no new, removed or
modified file (the intended outputs included). The rows run through ``maskreview.cli.main`` in one
driver process (``helpers_catalogue.py``, which captures at the file-descriptor level and prints
escaping exceptions as the interpreter would); rows marked isolated run as a real subprocess.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO
from helpers_catalogue import run_driver

pytestmark = pytest.mark.slow

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
    good_results: list


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
    isolated: bool = False

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


def rle(height: int, width: int, filled: bool = True) -> dict:
    import numpy as np
    from pycocotools import mask as mask_utils

    bitmap = np.zeros((height, width), dtype=np.uint8, order="F")
    bitmap[2:10, 2:10] = 1 if filled else 0
    encoded = mask_utils.encode(bitmap)
    return {"size": [height, width], "counts": encoded["counts"].decode()}


def coco_case(mutate: Callable[[dict], object] | None = None, raw: str | bytes | None = None,
              images: dict | None = None, command: str = "import") -> Callable[[CaseDir], list[str]]:
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
        return [command, str(path)]
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


_PORT = closed_port()
_NAN_JSON = '{"images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 32}], "categories": [{"id": 1, ' \
            '"name": "c"}], "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [NaN, 1, 2, 3]}]}'


# --------------------------------------------------------------------------------------------
# the catalogue
# --------------------------------------------------------------------------------------------

CASES = [
    # images (import, explain)
    Case("img-empty", "H2", image_case(raw_file(b""))),
    Case("img-truncated", "H2", image_case(truncated_png)),
    Case("img-text-as-png", "H2", image_case(raw_file(b"this is text, not an image\n"))),
    Case("img-bomb", "H2", image_case(raw_file(png_bytes(60000, 60000)))),
    Case("img-bomb-in-folder", "H2", image_case(folder_with(("good.png", write_png),
                                                            ("img-bomb-in-folder.png",
                                                             lambda p: p.write_bytes(png_bytes(60000, 60000)))))),
    Case("img-bomb-skip-bad", "H2", image_case(folder_with(
        ("img-bomb-skip-bad.png", lambda p: p.write_bytes(png_bytes(60000, 60000)))), "--skip-bad")),
    Case("img-zero-width", "H2", image_case(raw_file(png_bytes(0, 16)))),
    Case("img-wrong-extension", "H2", image_case(lambda c: write_png(c.path(".txt")))),
    Case("img-directory-named-png", "H2", image_case(lambda c: (c.dir / f"{c.id}.png").mkdir(parents=True)
                                                     or c.dir / f"{c.id}.png")),
    Case("img-unreadable", "H2", image_case(unreadable)),
    Case("img-symlink-loop", "H2", image_case(symlink_loop)),
    Case("img-fifo", "H2", image_case(fifo)),
    Case("img-empty-folder", "H2", image_case(lambda c: (c.dir / c.id).mkdir(parents=True) or c.dir / c.id)),
    Case("img-folder-all-bad-skip", "H2", image_case(folder_with(
        ("one.png", lambda p: p.write_text("junk")), ("two.jpg", lambda p: p.write_bytes(b""))), "--skip-bad")),
    Case("img-missing", "H2", image_case(lambda c: c.path(".png"))),
    Case("img-explain-text", "H2", image_case(raw_file(b"not an image"), command="explain")),
    Case("img-explain-truncated", "H2", image_case(truncated_png, command="explain")),
    Case("img-explain-bomb", "H2", image_case(raw_file(png_bytes(60000, 60000)), command="explain")),
    Case("img-infer-bomb", "H2", image_case(raw_file(png_bytes(60000, 60000)), "--device", "cpu",
                                            command="infer")),

    # COCO instances files (import)
    Case("coco-not-json", "H2", coco_case(raw="not json at all")),
    Case("coco-empty-file", "H2", coco_case(raw="")),
    Case("coco-not-utf8", "H2", coco_case(raw=b'{"images": ["\xff\xfe\xfa"]}')),
    Case("coco-not-object", "H2", coco_case(raw="[1, 2, 3]")),
    Case("coco-images-not-list", "H2", coco_case(lambda d: {**d, "images": {"1": "a.png"}})),
    Case("coco-annotations-not-list", "H2", coco_case(lambda d: {**d, "annotations": 5})),
    Case("coco-categories-not-list", "H2", coco_case(lambda d: {**d, "categories": "circle"})),
    Case("coco-image-not-object", "H2", coco_case(lambda d: {**d, "images": [5, *d["images"]]})),
    Case("coco-annotation-not-object", "H2", coco_case(lambda d: {**d, "annotations": ["oops", *d["annotations"]]})),
    Case("coco-category-not-object", "H2", coco_case(lambda d: {**d, "categories": [7, *d["categories"]]})),
    Case("coco-bbox-strings", "H2", coco_case(ann(segmentation=None, bbox=["a", "b", "c", "d"]))),
    Case("coco-bbox-not-list", "H2", coco_case(ann(segmentation=None, bbox="4,4,16,16"))),
    Case("coco-deep-nesting", "H2", coco_case(raw='{"images": ' + "[" * 200000 + "]" * 200000 + "}")),
    Case("coco-rle-garbage", "H2", coco_case(ann(segmentation={"size": [32, 32], "counts": "\x7f~~~}}}garbage"}))),
    Case("coco-rle-overlong", "H2", coco_case(ann(segmentation={"size": [32, 32], "counts": rle(64, 64)["counts"]}))),
    Case("coco-rle-short", "H2", coco_case(ann(segmentation={"size": [32, 32], "counts": rle(8, 8)["counts"]}))),
    Case("coco-rle-wrong-size", "H2", coco_case(ann(segmentation=rle(16, 16)))),
    Case("coco-rle-counts-number", "H2", coco_case(ann(segmentation={"size": [32, 32], "counts": 5}))),
    Case("coco-uncompressed-negative", "H2", coco_case(ann(segmentation={"size": [32, 32],
                                                                          "counts": [-100, 1124]}))),
    Case("coco-uncompressed-strings", "H2", coco_case(ann(segmentation={"size": [32, 32], "counts": ["a", "b"]}))),
    Case("coco-polygon-strings", "H2", coco_case(ann(segmentation=[["a", "b", "c", "d", "e", "f"]]))),
    Case("coco-polygon-too-short", "H2", coco_case(ann(segmentation=[[1, 2, 3]]))),
    Case("coco-segmentation-string", "H2", coco_case(ann(segmentation="a square"))),
    Case("coco-width-string", "H2", coco_case(image_entry(width="wide"))),
    Case("coco-width-negative", "H2", coco_case(image_entry(width=-32))),
    Case("coco-width-huge", "H2", coco_case(image_entry(width=10**6, height=10**6))),
    Case("coco-width-disagrees", "H2", coco_case(image_entry(width=64, height=48))),
    Case("coco-image-id-string", "H2", coco_case(image_entry(id="first"))),
    Case("coco-image-no-file-name", "H2", coco_case(lambda d: d["images"][0].pop("file_name") and None)),
    Case("coco-file-name-number", "H2", coco_case(image_entry(file_name=5))),
    Case("coco-duplicate-image-ids", "H2", coco_case(lambda d: d["images"][1].update(id=1))),
    Case("coco-unknown-category", "H2", coco_case(ann(category_id=99))),
    Case("coco-unknown-image-id", "H2", coco_case(ann(image_id=99))),
    Case("coco-nan-bbox", "H2", coco_case(raw=_NAN_JSON)),
    Case("coco-infinite-bbox", "H2", coco_case(raw=_NAN_JSON.replace("NaN", "Infinity"))),
    Case("coco-negative-bbox", "H2", coco_case(ann(segmentation=None, bbox=[4, 4, -10, -10]))),
    Case("coco-file-name-escapes", "H2", coco_case(image_entry(file_name="../outside.png"),
                                                   images={"../outside.png": (32, 32), "b.png": (32, 32)})),
    Case("coco-file-name-absolute", "H2", coco_absolute_file_name),
    Case("coco-missing-images", "H2", coco_case(images={"a.png": (32, 32)}), names=("b.png",)),
    Case("coco-images-dir-missing", "H2", lambda c: [*coco_case()(c), "--images", str(c.dir / "nope")],
         names=("nope",)),

    # COCO results files (eval --gt --pred)
    Case("res-not-json", "H2", results_case(raw="{{{")),
    Case("res-not-list", "H2", results_case({"image_id": 1})),
    Case("res-empty-list", "H2", results_case([])),
    Case("res-entry-not-object", "H2", results_case([5])),
    Case("res-missing-score", "H2", results_case(result(score=DROP))),
    Case("res-score-string", "H2", results_case(result(score="high"))),
    Case("res-nan-score", "H2", results_case(raw=json.dumps(result()).replace("0.9", "NaN"))),
    Case("res-bad-image-id", "H2", results_case(result(image_id=999))),
    Case("res-bad-segmentation", "H2", results_case(result(segmentation="a square"))),
    Case("res-rle-garbage", "H2", results_case(result(segmentation={"size": [32, 32], "counts": "\x7f~~garbage"}))),
    Case("res-rle-wrong-size", "H2", results_case(result(segmentation=rle(8, 8)))),
    Case("res-gt-broken", "H2", lambda c: ["eval", "--gt", str(c.write(".json", "[]")), "--pred",
                                           str(c.write(".pred.json", json.dumps(result())))]),

    # weights (infer --weights)
    Case("w-string-tensor", "H1", weights_case(string_tensor)),
    Case("w-wrong-class-count", "H1", weights_case(wrong_class_count)),
    Case("w-pickle-code-pkl", "H1", weights_case(lambda c: c.write(".pkl", evil_pickle(c)))),
    Case("w-pickle-code-pth", "H1", weights_case(lambda c: c.write(".pth", evil_pickle(c)))),
    Case("w-truncated", "H1", weights_case(truncated_weights)),
    Case("w-empty", "H1", weights_case(lambda c: c.write(".pth", b""))),
    Case("w-not-a-dict", "H1", weights_case(lambda c: torch_save(c, [1, 2, 3]))),
    Case("w-missing", "H1", weights_case(lambda c: c.path(".pth"))),
    Case("w-directory", "H1", weights_case(lambda c: (c.dir / f"{c.id}.pth").mkdir(parents=True)
                                           or c.dir / f"{c.id}.pth")),
    Case("w-resume-booby-trap", "H1", resume_booby_trap, names=("model_0000000",)),

    # configs (--model / --base)
    Case("cfg-python-tag", "H1", config_case(yaml_file(evil_yaml))),
    Case("cfg-python-tag-in-base", "H1", config_case(base_chain), names=("evil-base.yaml",)),
    Case("cfg-python-tag-model-dir", "H1", config_case(evil_model_dir)),
    Case("cfg-python-tag-train", "H1", config_case(yaml_file(evil_yaml), command="train")),
    Case("cfg-invalid-yaml", "H1", config_case(yaml_file("MODEL: [unclosed\n"))),
    Case("cfg-unknown-key", "H1", config_case(yaml_file("MODEL:\n  NOT_A_KEY: 1\n"))),
    Case("cfg-not-a-mapping", "H1", config_case(yaml_file("- a\n- b\n"))),
    Case("cfg-empty", "H1", config_case(yaml_file(""))),
    Case("cfg-base-missing", "H1", config_case(yaml_file("_BASE_: nope-missing.yaml\n")), names=("nope-missing",)),
    Case("cfg-base-loop", "H1", config_case(base_loop)),
    Case("cfg-unknown-model", "H1", args("infer", BASE, "--model", "{id}")),

    # arguments
    Case("arg-infer-batch-0", "H1", infer("--batch-size", "0"), names=("--batch-size",)),
    Case("arg-infer-batch-negative", "H1", infer("--batch-size", "-3"), names=("--batch-size",)),
    Case("arg-infer-batch-text", "H1", infer("--batch-size", "many"), names=("--batch-size",)),
    Case("arg-infer-score-negative", "H1", infer("--score-thresh", "-1"), names=("--score-thresh",)),
    Case("arg-infer-nms-above-1", "H1", infer("--nms-thresh", "2"), names=("--nms-thresh",)),
    Case("arg-infer-max-dets-0", "H1", infer("--max-dets", "0"), names=("--max-dets",)),
    Case("arg-infer-device", "H1", infer("--device", "tpu"), names=("tpu",)),
    Case("arg-train-batch-0", "H1", train("--batch", "0"), names=("--batch",)),
    Case("arg-train-lr-negative", "H1", train("--lr", "-1"), names=("--lr",)),
    Case("arg-train-iters-negative", "H1", args("train", BASE, "--out", "{d}/model-out", "--iters", "-5"),
         names=("--iters",)),
    Case("arg-train-holdout", "H1", train("--holdout", "1.5"), names=("--holdout",)),
    Case("arg-train-log-period-0", "H1", train("--log-period", "0"), names=("--log-period",)),
    Case("arg-train-checkpoint-period-0", "H1", train("--checkpoint-period", "0"), names=("--checkpoint-period",)),
    Case("arg-train-opts-odd", "H1", train("--opts", "SOLVER.BASE_LR"), names=("SOLVER.BASE_LR",)),
    Case("arg-train-opts-unknown-key", "H1", train("--opts", "SOLVER.NOT_A_KEY", "1"), names=("SOLVER.NOT_A_KEY",)),
    Case("arg-train-opts-bad-value", "H1", train("--opts", "SOLVER.MAX_ITER", "lots"), names=("SOLVER.MAX_ITER",)),
    Case("arg-demo-n-0", "H1", args("demo-data", "--out", "{d}/demo", "--n", "0"), names=("--n",)),
    Case("arg-demo-n-negative", "H1", args("demo-data", "--out", "{d}/demo", "--n", "-5"), names=("--n",)),
    Case("arg-demo-size-0", "H1", args("demo-data", "--out", "{d}/demo", "--n", "1", "--size", "0"),
         names=("--size",)),
    Case("arg-demo-size-huge", "H1", args("demo-data", "--out", "{d}/demo", "--n", "1", "--size", "100000"),
         names=("--size",)),
    Case("arg-demo-out-file", "H1", args("demo-data", "--out", "{file}", "--n", "1")),
    Case("arg-explain-out-file", "H1", args("explain", "{png}", "--out", "{file}", "--device", "cpu")),
    Case("arg-explain-level", "H1", args("explain", "{png}", "--out", "{d}/x", "--level", "p9", "--device", "cpu"),
         names=("p9",)),
    Case("arg-eval-iou-thresh", "H1", args("eval", BASE, "--iou-thresh", "1.5", "--eval-key", "none"),
         names=("--iou-thresh",)),
    Case("arg-unknown-command", "H1", args("frobnicate"), names=("frobnicate",)),
    Case("arg-import-no-source", "H1", args("import"), names=("source",)),
    Case("arg-infer-missing-source", "H1", args("infer", "{d}/{id}-nowhere"), names=("nowhere",)),

    # eval keys that would overwrite what reviewers own
    Case("key-tags", "H4", args("eval", BASE, "--eval-key", "tags"), names=("tags",)),
    Case("key-label", "H4", args("eval", BASE, "--eval-key", "label"), names=("label",)),
    Case("key-mask", "H4", args("eval", BASE, "--eval-key", "mask"), names=("mask",)),
    Case("key-metadata", "H4", args("eval", BASE, "--eval-key", "metadata"), names=("metadata",)),
    Case("key-ground-truth", "H4", args("eval", BASE, "--eval-key", "ground_truth"), names=("ground_truth",)),
    Case("key-pred-field-missing", "H4", args("eval", BASE, "--pred-field", "no_such_field"),
         names=("no_such_field",)),

    # export targets
    Case("export-out-is-file", "H2", export_case(lambda c: c.write(".txt", "a file\n"))),
    Case("export-out-not-empty", "H2", export_case(non_empty_folder)),
    Case("export-out-unwritable", "H2", export_case(lambda c: Path(f"/proc/{c.id}")), ),
    Case("export-out-under-file", "H2", export_case(lambda c: c.write(".txt", "a file\n") / "sub")),
    Case("export-tags-match-nothing", "H2", export_case(None, "--tags", "no-such-tag"), names=("no-such-tag",)),
    Case("export-label-tags-match-nothing", "H2", export_case(None, "--label-tags", "no-such-label-tag"),
         names=("no-such-label-tag",)),
    Case("export-field-missing", "H2", export_case(None, "--field", "no_such_field"), names=("no_such_field",)),
    Case("export-name-collision", "H2", collide, names=(COLLIDE,)),

    # database faults
    Case("db-closed-port", "H1", args("--database-uri", f"mongodb://127.0.0.1:{_PORT}", "import", "{png}"),
         names=(str(_PORT),), isolated=True),
    Case("db-bad-uri", "H1", args("--database-uri", "not-a-mongodb-uri", "import", "{png}"),
         names=("not-a-mongodb-uri",), isolated=True),

    # the same inputs as a real process (checks the in-process driver against the real thing)
    Case("proc-coco-not-json", "H2", coco_case(raw="not json at all"), isolated=True),
    Case("proc-infer-batch-0", "H1", infer("--batch-size", "0"), names=("--batch-size",), isolated=True),
    Case("proc-w-pickle-code", "H1", weights_case(lambda c: c.write(".pkl", evil_pickle(c))), isolated=True),
    Case("proc-img-bomb", "H2", image_case(raw_file(png_bytes(60000, 60000))), isolated=True),
]


# --------------------------------------------------------------------------------------------
# running them
# --------------------------------------------------------------------------------------------

def _make_shared(root: Path) -> Shared:
    shared_dir = root / "shared"
    write_png(shared_dir / "images" / "a.png")
    write_png(shared_dir / "images" / "b.png", color=(20, 200, 40))
    good_json = shared_dir / "annotations.json"
    good_json.write_text(json.dumps(good_coco()))
    good_png = write_png(shared_dir / "good.png")
    return Shared(root, good_png, good_json, result())


def _make_datasets(fo, shared: Shared) -> list[str]:
    from maskreview.core.sources import open_source

    base = open_source(shared.good_json, name=BASE)
    base.clone_sample_field("ground_truth", "predictions")
    for sample in base:
        for det in sample.predictions.detections:
            det.confidence = 0.9
        sample.save()
    base.clone(COLLIDE, persistent=True)
    return [BASE, COLLIDE]


def _selected(session) -> list[Case]:
    wanted = {item.callspec.params["case"].id for item in session.items
              if getattr(item, "originalname", "") == "test_bad_input" and hasattr(item, "callspec")}
    return [case for case in CASES if case.id in wanted]


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory, fo):
    root = tmp_path_factory.mktemp("catalogue")
    shared = _make_shared(root)
    names = _make_datasets(fo, shared)
    specs = []
    for case in _selected(request.session):
        case_dir = CaseDir(case.id, root / "cases" / case.id, shared)
        case_dir.dir.mkdir(parents=True, exist_ok=True)
        argv = case.build(case_dir)
        specs.append({"id": case.id, "argv": argv, "cwd": str(case_dir.dir), "isolated": case.isolated,
                      "watch": [str(root), os.environ["MASKREVIEW_DATA_DIR"]]})
    results = run_driver(specs, root)
    yield {"results": results, "specs": {s["id"]: s for s in specs}, "root": root}
    for name in names:
        if name in fo.list_datasets():
            fo.delete_dataset(name)


def _explain(case: Case, spec: dict, r: dict) -> str:
    return (f"\n[{case.id}, owner {case.owner}] maskreview {' '.join(spec['argv'])}\n"
            f"exit {r['rc']} after {r['seconds']} s\n--- stderr:\n{r['stderr'][-3000:]}\n"
            f"--- stdout:\n{r['stdout'][-1000:]}\n--- datasets added {r['datasets_added']}, removed "
            f"{r['datasets_removed']}; database {r['database']}\n--- files {r['files']}")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, outcomes):
    if case.id == "img-unreadable" and os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    spec, r = outcomes["specs"][case.id], outcomes["results"][case.id]
    why = _explain(case, spec, r)
    assert "Traceback" not in r["stderr"] + r["stdout"], why
    assert r["rc"] == 2, why
    lines = [line for line in r["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1, why
    assert lines[0].startswith("maskreview") and ": error: " in lines[0], why
    assert any(name in lines[0] for name in (case.names or (case.id,))), why
    assert not (Path(spec["cwd"]) / "CODE-RAN").exists(), "a crafted file ran code" + why
    assert not r["datasets_added"] and not r["datasets_removed"], why
    assert not any(r["database"].values()), why
    assert not any(r["files"].values()), why


_DRIVER_CHECK = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import helpers_catalogue as h
from maskreview import cli
from maskreview.core.errors import BadInputError

def crash(args):
    raise ZeroDivisionError("escaped main")

def refuse(args):
    os.write(2, b"from C\\n")
    raise BadInputError("refused.png: refused")

out = {}
cli.cmd_models = crash
out["crash"] = h.run_in_process(["models"])
cli.cmd_models = refuse
out["refuse"] = h.run_in_process(["models"])
out["argparse"] = h.run_in_process(["--no-such-option"])
print(json.dumps(out))
"""


def test_driver_shows_what_escapes_main():
    """The driver must not hide a traceback, a stray stderr line or argparse's exit code."""
    proc = subprocess.run([sys.executable, "-c", _DRIVER_CHECK, str(Path(__file__).parent)], capture_output=True,
                          text=True, timeout=120, cwd=REPO, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    rc, _, err = out["crash"]
    assert rc == 1 and "Traceback" in err and "ZeroDivisionError: escaped main" in err
    rc, _, err = out["refuse"]
    assert rc == 2 and err.splitlines() == ["from C", "maskreview: error: refused.png: refused"]
    rc, _, err = out["argparse"]
    assert rc == 2 and "--no-such-option" in err
