"""Bring anything into a persistent FiftyOne dataset once: a folder, an image, a COCO JSON, a name.

Everything after import reads the dataset. Opening the same source again reuses its dataset.
An import validates the whole source before it writes anything (``core.cocofile`` for COCO
files). It writes into a dataset named ``NAME (incomplete import)``, marked incomplete in its
info, and only the last write renames it to ``NAME`` and marks it complete, in one update. A
failure deletes it; a crash (the process or mongod killed) leaves it under the incomplete name,
which is never opened as a dataset: the next import of the same source says so and starts again.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from maskreview.core import cocofile
from maskreview.core import masks as mk
from maskreview.core.errors import BadInputError
from maskreview.core.fields import GT_FIELD
from maskreview.core.images import IMAGE_EXTENSIONS, check_pixels, image_header, is_image_path
from maskreview.core.progress import Progress
from maskreview.core.store import connect, fiftyone

INFO_KEY = "maskreview_source"
IMPORT_KEY = "maskreview_import"  # {"complete": bool, "samples": how many the import writes}
INCOMPLETE_SUFFIX = " (incomplete import)"
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


DATASET_PREFIX = "dataset:"


def resolve(source: str | os.PathLike, images_dir: str | os.PathLike | None = None) -> SourceSpec:
    """Decide what ``source`` is: an image, a folder, a COCO JSON or a dataset name."""
    text = str(source)
    if text.startswith(DATASET_PREFIX):  # ``dataset:NAME``: the dataset, whatever paths exist here
        name = text[len(DATASET_PREFIX):]
        if name in connect().list_datasets():
            return SourceSpec("dataset", dataset_name=name)
        raise BadInputError(f"{name}: no such FiftyOne dataset")
    path = Path(text).expanduser()
    try:
        exists = path.exists()
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        raise BadInputError(f"{text[:80]}{'...' if len(text) > 80 else ''}: not a usable path "
                            f"({getattr(exc, 'strerror', None) or exc})") from exc
    if exists:
        if text in connect().list_datasets():
            raise BadInputError(
                f"{text}: is both a path ({path.resolve()}) and a FiftyOne dataset name; give the path as "
                f"./{text} (or absolute), or the dataset as {DATASET_PREFIX}{text}")
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
    trust_json_size: bool = False,
):
    """A persistent ``fo.Dataset`` for ``source``, imported on first use, reused after.

    ``trust_json_size`` takes a COCO file's image width and height as given instead of checking
    them against each image's header (for images on slow remote storage).
    """
    spec = resolve(source, images_dir)
    fo = connect()
    progress = progress or Progress()
    if spec.kind == "dataset":
        return _check_complete(fo.load_dataset(spec.dataset_name))
    name = name or default_dataset_name(spec)
    if name in fo.list_datasets():
        dataset = fo.load_dataset(name)
        if dataset.info.get(INFO_KEY) not in (None, spec.describe()):
            raise BadInputError(
                f"dataset {name!r} already exists and was imported from "
                f"{dataset.info[INFO_KEY].get('path')}; choose another --name"
            )
        if is_complete(dataset):
            return dataset
        progress.note(f"dataset {name!r} is an import that did not finish ({len(dataset)} of "
                      f"{dataset.info[IMPORT_KEY].get('samples')} samples); importing it again from the start")
        dataset.delete()
    partial = name + INCOMPLETE_SUFFIX
    if partial in fo.list_datasets():
        old = fo.load_dataset(partial)
        old.reload()
        _check_not_running(old, spec)
        was = (old.info.get(INFO_KEY) or {}).get("path") or spec.path
        progress.note(f"an earlier import of {was} into {name!r} did not finish ({len(old)} of "
                      f"{(old.info.get(IMPORT_KEY) or {}).get('samples', '?')} samples written); "
                      "importing it again from the start")
        old.delete()
    classes = coco_categories = None
    if spec.kind == "coco":
        samples, classes, coco_categories = _coco_samples(spec, progress, trust_json_size)
    else:
        paths = [spec.path] if spec.kind == "images" else _folder_images(spec.path)
        samples = _image_samples(paths, progress, skip_bad)
    return _write_dataset(name, spec, samples, classes, coco_categories, progress)


def _check_not_running(partial, spec: SourceSpec) -> None:
    """Refuse to restart an import that another process on this machine is still writing."""
    import psutil

    state = (partial.info or {}).get(IMPORT_KEY) or {}
    pid = state.get("pid")
    if state.get("host") == socket.gethostname() and isinstance(pid, int) and pid != os.getpid() \
            and psutil.pid_exists(pid):
        raise BadInputError(f"{spec.path} is being imported into {partial.name!r} by process {pid} right now; "
                            "wait for it to finish (or stop it), then run this again")


def is_complete(dataset) -> bool:
    """False for a dataset an import is writing, or was writing when it died."""
    return (dataset.info or {}).get(IMPORT_KEY, {}).get("complete", True) is not False


def _check_complete(dataset):
    if is_complete(dataset):
        return dataset
    source = ((dataset.info or {}).get(INFO_KEY) or {}).get("path")
    raise BadInputError(f"dataset {dataset.name!r} is an import that did not finish; import "
                        f"{source or 'its source'} again to finish it")


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
    for problem in bad:  # named only when the import goes on without them
        progress.note(f"skipped {problem}")
    return samples


# --------------------------------------------------------------------------------------------
# COCO instances JSON
# --------------------------------------------------------------------------------------------

def load_coco_json(path: Path) -> dict:
    data = cocofile.load_json(path, "COCO")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise BadInputError(f"{path}: not a COCO instances file (no 'images' list)")
    return data


def _coco_samples(spec: SourceSpec, progress: Progress, trust_json_size: bool = False):
    fo = connect()
    path, images_dir = spec.path, spec.images_dir
    coco = cocofile.check_instances(load_coco_json(path), path)
    root = images_dir.resolve()
    files, missing = {}, []
    for image_id, im in coco.images.items():
        try:
            file_path = (images_dir / im["file_name"]).resolve()
            outside = not file_path.is_relative_to(root)
            found = outside or file_path.is_file()
        except (OSError, ValueError) as exc:  # a NUL byte, a name too long, a lone surrogate...
            raise BadInputError(f"{coco.where_image(path, image_id)}: file_name {cocofile.short(im['file_name'])} "
                                f"is not a usable path ({getattr(exc, 'strerror', None) or exc})") from exc
        if outside:
            raise BadInputError(f"{coco.where_image(path, image_id)}: file_name {cocofile.short(im['file_name'])} "
                                f"points outside {images_dir}")
        files[image_id] = file_path
        if not found:
            missing.append(im["file_name"])
    if missing:
        raise BadInputError(
            f"{path}: {len(missing)} of {len(coco.images)} images not found in {images_dir} "
            f"(first: {cocofile.short(missing[0])}); pass --images DIR"
        )

    progress.start(len(coco.images), "reading COCO annotations")
    samples = []
    for image_id, im in coco.images.items():
        progress.check()
        file_path = files[image_id]
        width, height, mime = _image_size(coco.where_image(path, image_id), im, file_path, trust_json_size)
        detections = [_coco_detection(path, index, ann, coco.categories, height, width)
                      for index, ann in coco.annotations[image_id]]
        meta = fo.ImageMetadata(width=width, height=height, mime_type=mime, size_bytes=file_path.stat().st_size)
        sample = fo.Sample(filepath=str(file_path), metadata=meta, coco_id=image_id)
        sample[GT_FIELD] = fo.Detections(detections=detections)
        samples.append(sample)
        progress.advance()
    return samples, [coco.categories[k] for k in sorted(coco.categories)], coco.category_entries


def _image_size(where: str, im: dict, file_path: Path, trust_json_size: bool) -> tuple[int, int, str | None]:
    """The image's ``(width, height, mime)``: its header's, which the JSON's must agree with."""
    if trust_json_size and "width" in im:
        check_pixels(im["width"], im["height"], f"{where} ({file_path.name})")
        return im["width"], im["height"], None
    width, height, mime = image_header(file_path)
    if "width" in im and (im["width"], im["height"]) != (width, height):
        raise BadInputError(f"{where}: the JSON says {im['width']}x{im['height']} but {file_path} is "
                            f"{width}x{height} (width x height as displayed)")
    return width, height, mime


def _coco_detection(path: Path, index: int, ann: dict, categories: dict, height: int, width: int):
    label = categories[ann["category_id"]]
    attrs = {"iscrowd": bool(ann.get("iscrowd", 0)), "coco_id": ann.get("id")}
    bbox = ann.get("bbox")
    seg = ann.get("segmentation")
    try:
        if seg is None:  # a box-only annotation (checked: it has a finite bbox)
            x, y, w, h = (float(v) for v in bbox)
            det = fiftyone().Detection(label=label, bounding_box=[x / width, y / height, w / width, h / height], **attrs)
            mk.detection_pixel_box(det, height, width)  # a box its fill could not be made for is refused here
            return det
        bitmap = mk.coco_to_bitmap(seg, height, width)
        return mk.bitmap_to_detection(bitmap, label, empty_box=bbox, **attrs)
    except mk.MaskError as exc:
        raise BadInputError(f"{cocofile.where_annotation(path, index, ann)}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

def _write_dataset(name: str, spec: SourceSpec, samples, classes, coco_categories, progress: Progress):
    fo = connect()
    dataset = fo.Dataset(name + INCOMPLETE_SUFFIX, persistent=True)
    try:
        dataset.info[INFO_KEY] = spec.describe()
        dataset.info[IMPORT_KEY] = {"complete": False, "samples": len(samples), "host": socket.gethostname(),
                                    "pid": os.getpid()}
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
        dataset.info[IMPORT_KEY] = {"complete": True, "samples": len(samples)}
        dataset.name = name  # one update: the complete mark and the real name together
    except BaseException:
        try:
            dataset.delete()
        except Exception:  # the database went away: the dataset stays, named and marked incomplete
            pass
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
