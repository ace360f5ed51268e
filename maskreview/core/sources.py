"""Bring anything into a persistent FiftyOne dataset once: a folder, an image, a COCO JSON, a name.

Everything after import reads the dataset. Opening the same source again reuses its dataset.
An import validates the whole source before it writes anything, and deletes its dataset if
writing fails half-way, so a bad source never leaves a half-imported dataset behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from maskreview.core import masks as mk
from maskreview.core.errors import BadInputError
from maskreview.core.images import IMAGE_EXTENSIONS, image_header, is_image_path
from maskreview.core.progress import Progress
from maskreview.core.store import connect

GT_FIELD = "ground_truth"
INFO_KEY = "maskreview_source"
_BATCH = 500


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "folder" | "images" | "coco" | "dataset"
    path: Path | None = None
    images_dir: Path | None = None
    dataset_name: str | None = None

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "path": str(self.path) if self.path else None,
            "images_dir": str(self.images_dir) if self.images_dir else None,
        }


def resolve(source: str | os.PathLike, images_dir: str | os.PathLike | None = None) -> SourceSpec:
    """Decide what ``source`` is: an image, a folder, a COCO JSON or a dataset name."""
    text = str(source)
    path = Path(text).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_dir():
            return SourceSpec("folder", path)
        if path.suffix.lower() == ".json":
            return SourceSpec("coco", path, coco_images_dir(path, images_dir))
        if is_image_path(path):
            return SourceSpec("images", path)
        raise BadInputError(f"{path}: not an image ({', '.join(sorted(IMAGE_EXTENSIONS))}), folder or COCO JSON")
    fo = connect()
    if text in fo.list_datasets():
        return SourceSpec("dataset", dataset_name=text)
    raise BadInputError(f"{text}: no such file, folder or FiftyOne dataset")


def coco_images_dir(json_path: Path, images_dir: str | os.PathLike | None) -> Path:
    """``--images DIR`` if given, else ``images/`` or ``data/`` beside the JSON, else its folder."""
    if images_dir is not None:
        d = Path(images_dir).expanduser().resolve()
        if not d.is_dir():
            raise BadInputError(f"{d}: images folder not found")
        return d
    for sub in ("images", "data"):
        if (json_path.parent / sub).is_dir():
            return json_path.parent / sub
    return json_path.parent


def default_dataset_name(spec: SourceSpec) -> str:
    key = json.dumps(spec.describe(), sort_keys=True).encode()
    stem = spec.path.stem if spec.path else "dataset"
    return f"{stem}-{hashlib.sha1(key).hexdigest()[:8]}"


def open_source(
    source: str | os.PathLike,
    images_dir: str | os.PathLike | None = None,
    name: str | None = None,
    progress: Progress | None = None,
    skip_bad: bool = False,
):
    """A persistent ``fo.Dataset`` for ``source``, imported on first use, reused after."""
    spec = resolve(source, images_dir)
    fo = connect()
    if spec.kind == "dataset":
        return fo.load_dataset(spec.dataset_name)
    name = name or default_dataset_name(spec)
    if name in fo.list_datasets():
        dataset = fo.load_dataset(name)
        if dataset.info.get(INFO_KEY) not in (None, spec.describe()):
            raise BadInputError(
                f"dataset {name!r} already exists and was imported from "
                f"{dataset.info[INFO_KEY].get('path')}; choose another --name"
            )
        return dataset
    progress = progress or Progress()
    classes = coco_categories = None
    if spec.kind == "coco":
        samples, classes, coco_categories = _coco_samples(spec, progress)
    else:
        paths = [spec.path] if spec.kind == "images" else _folder_images(spec.path)
        samples = _image_samples(paths, progress, skip_bad)
    return _write_dataset(name, spec, samples, classes, coco_categories, progress)


# --------------------------------------------------------------------------------------------
# folders and images
# --------------------------------------------------------------------------------------------

def _folder_images(folder: Path) -> list[Path]:
    paths = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not paths:
        raise BadInputError(f"{folder}: no images found ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return paths


def _image_samples(paths: list[Path], progress: Progress, skip_bad: bool) -> list:
    fo = connect()
    progress.start(len(paths), "reading images")
    samples, bad = [], []
    for path in paths:
        progress.check()
        try:
            width, height, mime = image_header(path)
        except BadInputError as exc:
            if not skip_bad:
                raise BadInputError(f"{exc} (use --skip-bad to import the other images)") from exc
            bad.append(str(exc))
        else:
            meta = fo.ImageMetadata(width=width, height=height, mime_type=mime, size_bytes=path.stat().st_size)
            samples.append(fo.Sample(filepath=str(path), metadata=meta))
        progress.advance()
    if not samples:
        raise BadInputError(f"no readable images among {len(paths)} files; first problem: {bad[0]}")
    return samples


# --------------------------------------------------------------------------------------------
# COCO instances JSON
# --------------------------------------------------------------------------------------------

def load_coco_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: not valid JSON (not UTF-8 text)") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise BadInputError(f"{path}: not a COCO instances file (no 'images' list)")
    for key in ("annotations", "categories"):
        if not isinstance(data.get(key, []), list):
            raise BadInputError(f"{path}: '{key}' must be a list")
    return data


def _coco_samples(spec: SourceSpec, progress: Progress):
    fo = connect()
    path, images_dir = spec.path, spec.images_dir
    data = load_coco_json(path)
    try:
        categories = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
        images = {int(im["id"]): im for im in data["images"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"{path}: a category or image entry lacks a valid id/name ({exc})") from exc

    by_image: dict[int, list[dict]] = {i: [] for i in images}
    for ann in data.get("annotations", []):
        where = f"{path}: annotation {ann.get('id', '?')}"
        if ann.get("image_id") not in by_image:
            raise BadInputError(f"{where} points at image id {ann.get('image_id')!r}, which is not in 'images'")
        if ann.get("category_id") not in categories:
            raise BadInputError(f"{where} has category id {ann.get('category_id')!r}, which is not in 'categories'")
        by_image[ann["image_id"]].append(ann)

    missing = [im.get("file_name") for im in images.values() if not (images_dir / str(im.get("file_name"))).is_file()]
    if missing:
        raise BadInputError(
            f"{path}: {len(missing)} of {len(images)} images not found in {images_dir} "
            f"(first: {missing[0]}); pass --images DIR"
        )

    progress.start(len(images), "reading COCO annotations")
    samples = []
    for image_id, im in images.items():
        progress.check()
        file_path = (images_dir / im["file_name"]).resolve()
        if not file_path.is_relative_to(images_dir.resolve()):
            raise BadInputError(f"{path}: image {image_id} file_name {im['file_name']!r} points outside {images_dir}")
        if "width" in im and "height" in im:
            width, height = int(im["width"]), int(im["height"])
            mime = None
        else:
            width, height, mime = image_header(file_path)
        detections = [_coco_detection(path, ann, categories, height, width) for ann in by_image[image_id]]
        meta = fo.ImageMetadata(width=width, height=height, mime_type=mime, size_bytes=file_path.stat().st_size)
        sample = fo.Sample(filepath=str(file_path), metadata=meta, coco_id=image_id)
        sample[GT_FIELD] = fo.Detections(detections=detections)
        samples.append(sample)
        progress.advance()
    return samples, [categories[k] for k in sorted(categories)], data.get("categories", [])


def _coco_detection(path: Path, ann: dict, categories: dict, height: int, width: int):
    label = categories[ann["category_id"]]
    attrs = {"iscrowd": bool(ann.get("iscrowd", 0)), "coco_id": ann.get("id")}
    bbox = ann.get("bbox")
    seg = ann.get("segmentation")
    try:
        if seg is None or seg == []:
            if not bbox or len(bbox) != 4:
                raise mk.MaskError("neither a segmentation nor a bbox")
            if seg is None:  # a box-only annotation
                from maskreview.core.store import fiftyone

                x, y, w, h = (float(v) for v in bbox)
                return fiftyone().Detection(label=label, bounding_box=[x / width, y / height, w / width, h / height], **attrs)
        bitmap = mk.coco_to_bitmap(seg or [], height, width)
        return mk.bitmap_to_detection(bitmap, label, empty_box=bbox, **attrs)
    except mk.MaskError as exc:
        raise BadInputError(f"{path}: annotation {ann.get('id', '?')} (image {ann.get('image_id')}): {exc}") from exc


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

def _write_dataset(name: str, spec: SourceSpec, samples, classes, coco_categories, progress: Progress):
    fo = connect()
    dataset = fo.Dataset(name, persistent=True)
    try:
        dataset.info[INFO_KEY] = spec.describe()
        if classes:
            dataset.default_classes = list(classes)
        if coco_categories is not None:
            dataset.info["coco_categories"] = coco_categories
        dataset.save()
        progress.start(len(samples), "writing dataset")
        for i in range(0, len(samples), _BATCH):
            progress.check()
            batch = samples[i : i + _BATCH]
            dataset.add_samples(batch, dynamic=True, progress=False)  # declares iscrowd, coco_id
            progress.advance(len(batch))
        if GT_FIELD not in dataset.get_field_schema() and spec.kind == "coco":
            dataset.add_sample_field(GT_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    except BaseException:
        dataset.delete()
        raise
    finally:
        progress.finish()
    return dataset


def summary(dataset) -> dict:
    """Sample and instance counts per label field, as ``import`` prints them."""
    fo = connect()
    counts = {}
    for field, ftype in dataset.get_field_schema(embedded_doc_type=fo.Detections).items():
        counts[field] = dataset.count(f"{field}.detections")
    return {"name": dataset.name, "samples": len(dataset), "instances": counts}
