"""Export a dataset, a tagged view or tagged labels as COCO (RLE, pixel-exact) or FiftyOne.

COCO masks are written as compressed RLE computed from the exact bitmaps (FiftyOne's own COCO
exporter writes polygons, which loses holes and thin parts). Nothing is ever written outside
the output folder: copied images get sanitized, de-duplicated base names under ``images/``,
whatever the sample file names are. The export is staged in a hidden folder beside the target
and renamed into place at the end, so a failed export (disk full, cancel) leaves nothing that
looks complete. The target must not exist or be an empty folder.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

from maskreview.core import masks as mk
from maskreview.core.errors import BadInputError, MaskreviewError
from maskreview.core.fields import GT_FIELD
from maskreview.core.progress import Progress
from maskreview.core.store import dataset_of, fiftyone
from maskreview.core.images import image_header

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def field_list(field) -> list[str]:
    """``field`` as a list: one name, or several (a sequence or a comma-separated string)."""
    names = field.split(",") if isinstance(field, str) else list(field)
    return [n.strip() for n in names if n and n.strip()]


def select(dataset, tags=None, label_tags=None, field=GT_FIELD):
    """Samples with any of ``tags``; with ``label_tags``, only labels (of the ``field`` or fields)
    with any of them, and only the samples that have such a label."""
    view = dataset.view()
    if tags:
        view = view.match_tags(list(tags))
    if label_tags:
        view = view.select_labels(tags=list(label_tags), fields=field_list(field))
    return view


def counts(view, field=GT_FIELD) -> dict:
    """What exporting ``view`` writes: ``{"samples": n, "labels": {field: n}}``."""
    schema = dataset_of(view).get_field_schema()
    return {"samples": view.count(),
            "labels": {f: view.count(f"{f}.detections") if f in schema else 0 for f in field_list(field)}}


def check_matches(view, tags=None, label_tags=None) -> None:
    """Refuse a selection that matches no sample, naming what was asked and what there is."""
    if view.count():
        return
    dataset = dataset_of(view)
    asked = "; ".join(f"{what} {', '.join(values)}" for what, values in
                      (("sample tags", tags), ("label tags", label_tags)) if values)
    there = ", ".join(f"{t} ({n})" for t, n in sorted(dataset.count_sample_tags().items()))
    raise BadInputError(f"nothing to export: no sample of {dataset.name!r} matches {asked or 'the selection'}"
                        f" (sample tags in it: {there or 'none'})")


def safe_name(path: str, used: set[str]) -> str:
    """A file name that is only a base name of safe characters, unique (case-insensitively)."""
    base = str(path).replace("\\", "/").rsplit("/", 1)[-1]
    stem, ext = os.path.splitext(base)
    stem = _UNSAFE.sub("_", stem).strip("._")[:100] or "image"
    ext = _UNSAFE.sub("", ext)[:12]
    name, n = stem + ext, 1
    while name.lower() in used:
        n += 1
        name = f"{stem}-{n}{ext}"
    used.add(name.lower())
    return name


def export(view, out_dir, fmt: str = "coco", field=GT_FIELD, copy_images: bool = False,
           progress: Progress | None = None) -> dict:
    """Write ``view``'s ``field`` (or several fields) to ``out_dir``; returns counts. Raises
    :class:`BadInputError` for bad targets and for a view with no sample (nothing is written)."""
    if fmt not in FORMATS:
        raise BadInputError(f"{fmt}: unknown export format; use {' or '.join(FORMATS)}")
    fields = field_list(field)
    if not fields:
        raise BadInputError("nothing to export: no label field chosen")
    for name in fields:
        if fmt == "coco":
            _check_detections_field(dataset_of(view), name)
        _check_finite_labels(view, name)
    check_matches(view)
    progress = progress or Progress()
    out = Path(out_dir).expanduser().absolute()
    staging = _staging_dir(out)
    try:
        report = FORMATS[fmt](view, staging, fields, copy_images, progress)
        _check_inside(staging)
        if out.exists():
            out.rmdir()  # checked empty above; fails (and we stop) if something appeared meanwhile
        os.rename(staging, out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise MaskreviewError(f"{out}: disk full during export; nothing was written") from exc
        raise MaskreviewError(f"{out}: export failed ({exc.strerror or exc}); nothing was written") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        progress.finish()
    return {**report, "out": str(out)}


def _check_detections_field(dataset, field: str) -> None:

    fo = fiftyone()
    schema = dataset.get_field_schema()
    if field not in schema:
        raise BadInputError(f"dataset {dataset.name!r} has no field {field!r} to export")
    kind = schema[field]
    if not (isinstance(kind, fo.EmbeddedDocumentField) and issubclass(kind.document_type, fo.Detections)):
        labels = [k for k, v in schema.items() if isinstance(v, fo.EmbeddedDocumentField)
                  and issubclass(v.document_type, fo.Detections)]
        raise BadInputError(f"dataset {dataset.name!r}: field {field!r} holds {type(kind).__name__}, not "
                            f"detections; export one of: {', '.join(labels) or 'no label fields'}")


def _staging_dir(out: Path) -> Path:
    if out.exists():
        if not out.is_dir():
            raise BadInputError(f"{out}: exists and is not a folder")
        if any(out.iterdir()):
            raise BadInputError(f"{out}: folder is not empty; export into a new or empty folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise BadInputError(f"{out}: cannot write there ({exc.strerror or exc})") from exc
    return staging


def _check_inside(root: Path) -> None:
    real = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.resolve().is_relative_to(real):
                raise MaskreviewError(f"refusing to export: {path} would point outside {root}")


# --------------------------------------------------------------------------------------------
# COCO
# --------------------------------------------------------------------------------------------

def _categories(view, field: str) -> list[dict]:
    labels = set(view.distinct(f"{field}.detections.label"))
    known = view.info.get("coco_categories") or []
    if known and labels <= {c.get("name") for c in known}:
        return [{k: c[k] for k in ("id", "name", "supercategory") if k in c} for c in known]
    names = [c for c in (view.default_classes or []) if c in labels]
    names += sorted(labels - set(names))
    return [{"id": i + 1, "name": n} for i, n in enumerate(names)]


def coco_dict(view, field: str, file_names: list[str], progress: Progress) -> dict:
    """The COCO instances dict of ``view``'s ``field``, masks as exact RLE."""
    from pycocotools import mask as mask_utils


    categories = _categories(view, field)
    cat_id = {c["name"]: c["id"] for c in categories}
    images, annotations = [], []
    for index, (path, meta, dets) in enumerate(zip(*view.values(["filepath", "metadata", field]))):
        progress.check()
        if meta is not None and meta.width and meta.height:
            width, height = int(meta.width), int(meta.height)
        else:
            width, height, _ = image_header(path)
        image_id = index + 1
        images.append({"id": image_id, "file_name": file_names[index], "width": width, "height": height})
        for det in (dets.detections if dets is not None else []):
            ann = {"id": len(annotations) + 1, "image_id": image_id, "category_id": cat_id[det.label],
                   "iscrowd": int(bool(det["iscrowd"])) if det.has_field("iscrowd") and det["iscrowd"] else 0}
            x, y, w, h = det.bounding_box
            box = [x * width, y * height, w * width, h * height]
            if det.mask is not None:
                rle = mk.detection_to_rle(det, height, width)
                area = float(mask_utils.area(rle))
                ann.update(segmentation=mk.rle_to_json(rle), area=area,
                           bbox=[float(v) for v in mask_utils.toBbox(rle)] if area else box)
            else:
                ann.update(bbox=box, area=float(box[2] * box[3]))
            if det.confidence is not None:
                ann["score"] = float(det.confidence)
            if det.tags:
                ann["tags"] = list(det.tags)
            annotations.append(ann)
        progress.advance()
    return {"info": {"description": f"exported by maskreview from {dataset_of(view).name}"},
            "images": images, "annotations": annotations, "categories": categories}


def _check_finite_labels(view, field: str) -> None:
    """A label whose box or confidence is NaN or infinite would make invalid JSON (either format):
    refuse the export and name the first one."""

    fo = fiftyone()
    kind = dataset_of(view).get_field_schema().get(field)
    if not (isinstance(kind, fo.EmbeddedDocumentField) and issubclass(kind.document_type, fo.Detections)):
        return
    rows = zip(*view.values(["filepath", f"{field}.detections.label", f"{field}.detections.bounding_box",
                             f"{field}.detections.confidence"]))
    for path, labels, boxes, confidences in rows:
        for index, (label, box, confidence) in enumerate(zip(labels or [], boxes or [], confidences or [])):
            values = list(box or []) + ([confidence] if confidence is not None else [])
            if len(box or []) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise BadInputError(f"{path}: label {index} ({label!r}) has a box or confidence that is not "
                                    f"finite ({box}, {confidence}); fix or delete it before exporting")


def export_coco(view, staging: Path, fields: list[str], copy_images: bool, progress: Progress) -> dict:
    """One field: ``annotations.json``; several: ``<field>.json`` each, with the same images."""
    paths = view.values("filepath")
    progress.start(len(paths) * (len(fields) + (1 if copy_images else 0)), "exporting COCO")
    if copy_images:
        images_dir = staging / "images"
        images_dir.mkdir()
        used: set[str] = set()
        file_names = []
        for path in paths:
            progress.check()
            name = safe_name(path, used)
            target = images_dir / name
            if not target.resolve().parent == images_dir.resolve():
                raise MaskreviewError(f"refusing to write {target} outside {images_dir}")
            try:
                shutil.copyfile(path, target)
            except FileNotFoundError as exc:
                raise BadInputError(f"{path}: image not found; export without --copy-images or restore it") from exc
            file_names.append(name)
            progress.advance()
    else:
        file_names = [str(Path(p).absolute()) for p in paths]
    labels = {}
    for field in fields:
        data = coco_dict(view, field, file_names, progress)
        name = "annotations.json" if len(fields) == 1 else f"{safe_name(field, set())}.json"
        with open(staging / name, "w", encoding="utf-8") as f:
            json.dump(data, f, allow_nan=False)  # NaN or Infinity is not JSON
            f.flush()
            os.fsync(f.fileno())
        labels[field] = len(data["annotations"])
    return {"format": "coco", "samples": len(paths), "annotations": sum(labels.values()), "labels": labels}


# --------------------------------------------------------------------------------------------
# FiftyOne
# --------------------------------------------------------------------------------------------

def export_fiftyone(view, staging: Path, fields: list[str], copy_images: bool, progress: Progress) -> dict:
    """The samples with the chosen label fields only (and their tags, scores, attributes)."""
    fo = fiftyone()
    progress.start(1, "exporting FiftyOne dataset")
    schema = dataset_of(view).get_field_schema()
    present = [f for f in fields if f in schema]
    view.select_fields(present).export(export_dir=str(staging), dataset_type=fo.types.FiftyOneDataset,
                                       export_media=bool(copy_images), overwrite=True, progress=False)
    progress.advance()
    labels = {f: view.count(f"{f}.detections") if f in present else 0 for f in fields}
    return {"format": "fiftyone", "samples": len(view), "annotations": sum(labels.values()), "labels": labels}


FORMATS = {"coco": export_coco, "fiftyone": export_fiftyone}
