"""Bad inputs of each kind issue 12 lists, written as files, for the GUI tests (bad input, soak)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path


def bomb_png(path: Path, side: int = 60000) -> Path:
    """A PNG whose header promises ``side`` x ``side`` pixels, in a few bytes."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (side + 1)))
                     + chunk(b"IEND", b""))
    return path


def booby_trapped_weights(path: Path, pwned: Path) -> Path:
    """A torch checkpoint whose unpickling creates ``pwned``."""
    import torch

    class Trap:
        def __reduce__(self):
            return open, (str(pwned), "w")

    torch.save({"model": Trap()}, path)
    return path


def _coco(images, annotations) -> str:
    return json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "a"}]})


def bad_file(kind: str, tmp_path: Path, demo_coco: Path) -> Path:
    """One bad input of each kind the issue lists, written under ``tmp_path``."""
    image = {"id": 1, "file_name": next((demo_coco.parent / "images").glob("*.png")).name, "width": 256, "height": 256}
    folder = tmp_path / kind
    folder.mkdir()
    if kind == "truncated_json":
        (folder / "images").symlink_to(demo_coco.parent / "images")
        return _write(folder / "annotations.json", _coco([image], [])[:-20])
    if kind == "annotation_not_an_object":
        (folder / "images").symlink_to(demo_coco.parent / "images")
        return _write(folder / "annotations.json", _coco([image], [17]))
    if kind == "width_a_string":
        (folder / "images").symlink_to(demo_coco.parent / "images")
        return _write(folder / "annotations.json", _coco([{**image, "width": "wide"}], []))
    if kind == "bbox_strings":
        (folder / "images").symlink_to(demo_coco.parent / "images")
        return _write(folder / "annotations.json", _coco([image], [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": ["a", "b", "c", "d"], "area": 1, "iscrowd": 0}]))
    if kind == "rle_garbage":
        (folder / "images").symlink_to(demo_coco.parent / "images")
        return _write(folder / "annotations.json", _coco([image], [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 9], "area": 81, "iscrowd": 0,
             "segmentation": {"size": [256, 256], "counts": "\x7f\x00garbage~~~"}}]))
    if kind == "duplicate_image_ids":
        (folder / "images").symlink_to(demo_coco.parent / "images")
        other = next(p for p in sorted((demo_coco.parent / "images").glob("*.png")) if p.name != image["file_name"])
        return _write(folder / "annotations.json", _coco([image, {**image, "file_name": other.name}], []))
    if kind == "deep_json":
        return _write(folder / "deep.json", "[" * 100000 + "]" * 100000)
    if kind == "corrupt_png":
        return _write(folder / "corrupt.png", b"\x89PNG\r\n\x1a\n not really")
    if kind == "empty_png":
        return _write(folder / "empty.png", b"")
    if kind == "text_as_jpg":
        return _write(folder / "notes.jpg", "hello")
    if kind == "bomb_png":
        return bomb_png(folder / "bomb.png")
    if kind == "empty_folder":
        return folder
    if kind == "folder_without_images":
        _write(folder / "readme.txt", "no images here")
        return folder
    if kind == "folder_of_bombs":
        bomb_png(folder / "bomb.png")
        return folder
    if kind == "config_with_python_tag":
        return _write(folder / "evil.yaml", f"MODEL:\n  WEIGHTS: !!python/object/apply:builtins.open "
                                            f"[{str(folder / 'pwned')!r}, 'w']\n")
    if kind == "booby_trapped_weights":
        return booby_trapped_weights(folder / "evil.pth", folder / "pwned")
    if kind == "not_an_image":
        return _write(folder / "notes.txt", "hello")
    raise AssertionError(kind)


def _write(path: Path, content) -> Path:
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return path


KINDS = ["truncated_json", "annotation_not_an_object", "width_a_string", "bbox_strings", "rle_garbage",
         "duplicate_image_ids", "deep_json", "corrupt_png", "empty_png",
         "text_as_jpg", "bomb_png", "empty_folder", "folder_without_images", "folder_of_bombs",
         "config_with_python_tag", "booby_trapped_weights", "not_an_image"]
