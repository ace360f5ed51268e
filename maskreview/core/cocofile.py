"""Reading COCO files someone else wrote: an instances JSON (import, ``eval --gt``) or a results JSON.

Everything is checked before anything is written or handed to pycocotools. Each structural
problem is one :class:`BadInputError` naming the file, the entry (its index in the list and its
id) and the problem. Segmentations are checked where they are converted (``masks.coco_to_rle``),
because that needs the image's size.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from maskreview.core.errors import BadInputError
from maskreview.core import masks as mk

_ID_LIMIT = 2**63  # MongoDB's and numpy's int64


@dataclass
class Instances:
    """The checked parts of a COCO instances file, in file order."""

    images: dict[int, dict] = field(default_factory=dict)  # id -> entry
    image_index: dict[int, int] = field(default_factory=dict)  # id -> position in 'images'
    categories: dict[int, str] = field(default_factory=dict)  # id -> name
    category_entries: list[dict] = field(default_factory=list)  # id, name (and supercategory)
    annotations: dict[int, list[tuple[int, dict]]] = field(default_factory=dict)  # image id -> (index, entry)

    def where_image(self, path, image_id) -> str:
        return f"{path}: image {self.image_index[image_id]} (id {image_id})"


def load_json(path, what: str = "COCO"):
    """The parsed JSON of ``path``; every way it can fail is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: {what} file not found")
    try:  # NaN and Infinity parse (Python's JSON allows them); the checks refuse them where they matter
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: not valid JSON (not UTF-8 text)") from exc
    except RecursionError as exc:
        raise BadInputError(f"{path}: JSON nested too deeply to be a COCO file") from exc
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise BadInputError(f"{path}: not usable JSON ({exc})") from exc
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror or exc})") from exc


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------

def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite JSON number (not a bool)."""
    if is_int(value):
        return abs(value) < 1e300
    return isinstance(value, float) and math.isfinite(value)


def _id(value) -> bool:
    return is_int(value) and -_ID_LIMIT <= value < _ID_LIMIT


def short(value) -> str:
    """``value`` as JSON for a message, cut to 60 characters."""
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def positive_size(value) -> int | None:
    """A width or height as a positive int (640 or 640.0), else ``None``."""
    if is_int(value) and 0 < value < _ID_LIMIT:
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and value > 0:
        return int(value)
    return None


def check_box(box) -> str | None:
    """Why ``box`` is not a COCO ``[x, y, width, height]`` of finite numbers, else ``None``."""
    if not isinstance(box, list) or len(box) != 4:
        return f"bbox must be a list [x, y, width, height], not {short(box)}"
    if not all(is_number(v) for v in box):
        return f"bbox must be 4 finite numbers, not {short(box) if len(str(box)) > 60 else box}"
    if box[2] < 0 or box[3] < 0:
        return f"bbox {box} has a negative width or height"
    return None


# --------------------------------------------------------------------------------------------
# instances files
# --------------------------------------------------------------------------------------------

def check_instances(data, path, need_file_names: bool = True, need_sizes: bool = False) -> Instances:
    """The checked images, categories and annotations of a COCO instances dict."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise BadInputError(f"{path}: not a COCO instances file (no 'images' list)")
    for key in ("annotations", "categories"):
        if not isinstance(data.get(key, []), list):
            raise BadInputError(f"{path}: '{key}' must be a list, not {_kind(data[key])}")
    out = Instances()
    _check_images(out, data["images"], path, need_file_names, need_sizes)
    _check_categories(out, data.get("categories", []), path)
    _check_annotations(out, data.get("annotations", []), path)
    return out


def _check_images(out: Instances, images: list, path, need_file_names: bool, need_sizes: bool) -> None:
    for i, im in enumerate(images):
        if not isinstance(im, dict):
            raise BadInputError(f"{path}: image {i} is {_kind(im)}, not an object")
        image_id = im.get("id")
        if not _id(image_id):
            raise BadInputError(f"{path}: image {i} has no whole-number id (id: {short(image_id)})")
        where = f"{path}: image {i} (id {image_id})"
        if image_id in out.images:
            raise BadInputError(f"{path}: images {out.image_index[image_id]} and {i} both have id {image_id}")
        name = im.get("file_name")
        if (need_file_names or name is not None) and (not isinstance(name, str) or not name.strip()):
            raise BadInputError(f"{where}: file_name must be a non-empty string, not {short(name)}")
        sizes = {}
        for key in ("width", "height"):
            if key in im:
                sizes[key] = positive_size(im[key])
                if sizes[key] is None:
                    raise BadInputError(f"{where}: {key} must be a positive whole number, not {short(im[key])}")
        if len(sizes) == 1:
            raise BadInputError(f"{where}: has {next(iter(sizes))} but no {({'width', 'height'} - set(sizes)).pop()}")
        if need_sizes and not sizes:
            raise BadInputError(f"{where}: needs width and height")
        out.images[image_id] = {**im, **sizes}
        out.image_index[image_id] = i
        out.annotations[image_id] = []


def _check_categories(out: Instances, categories: list, path) -> None:
    names: dict[str, int] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict):
            raise BadInputError(f"{path}: category {i} is {_kind(cat)}, not an object")
        cat_id, name = cat.get("id"), cat.get("name")
        if not _id(cat_id):
            raise BadInputError(f"{path}: category {i} has no whole-number id (id: {short(cat_id)})")
        if not isinstance(name, str) or not name.strip():
            raise BadInputError(f"{path}: category {i} (id {cat_id}) needs a name, not {short(name)}")
        if cat_id in out.categories:
            raise BadInputError(f"{path}: two categories have id {cat_id}")
        if name in names:
            raise BadInputError(f"{path}: categories {names[name]} and {cat_id} are both named {name!r}")
        names[name] = cat_id
        out.categories[cat_id] = name
        entry = {"id": cat_id, "name": name}
        if isinstance(cat.get("supercategory"), str):
            entry["supercategory"] = cat["supercategory"]
        out.category_entries.append(entry)


def _check_annotations(out: Instances, annotations: list, path) -> None:
    seen_ids: dict[int, int] = {}
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise BadInputError(f"{path}: annotation {i} is {_kind(ann)}, not an object")
        problem = _annotation_problem(ann, out)
        ann_id = ann.get("id")
        if problem is None and ann_id is not None:
            if ann_id in seen_ids:
                problem = f"has the same id as annotation {seen_ids[ann_id]}"
            seen_ids[ann_id] = i
        if problem:
            raise BadInputError(f"{where_annotation(path, i, ann)}: {problem}")
        out.annotations[ann["image_id"]].append((i, ann))


def where_annotation(path, index: int, ann: dict) -> str:
    parts = [f"id {short(ann['id'])}" if "id" in ann else None,
             f"image {short(ann['image_id'])}" if "image_id" in ann else None]
    detail = ", ".join(p for p in parts if p)
    return f"{path}: annotation {index}" + (f" ({detail})" if detail else "")


def _annotation_problem(ann: dict, out: Instances) -> str | None:
    if "id" in ann and not _id(ann["id"]):
        return f"id must be a whole number, not {short(ann['id'])}"
    image_id, cat_id = ann.get("image_id"), ann.get("category_id")
    if not _id(image_id) or image_id not in out.images:
        return f"points at image id {short(image_id)}, which is not in 'images'"
    if not _id(cat_id) or cat_id not in out.categories:
        return f"has category id {short(cat_id)}, which is not in 'categories'"
    if ann.get("iscrowd", 0) not in (0, 1) or isinstance(ann.get("iscrowd"), float):
        return f"iscrowd must be 0 or 1, not {short(ann['iscrowd'])}"
    if ann.get("bbox") is not None and (why := check_box(ann["bbox"])):
        return why
    if "area" in ann and not (is_number(ann["area"]) and ann["area"] >= 0):
        return f"area must be a non-negative number, not {short(ann['area'])}"
    seg = ann.get("segmentation")
    if seg is not None and not isinstance(seg, (list, dict)):
        return f"segmentation must be polygons (a list) or RLE (an object), not {_kind(seg)}"
    if seg in (None, []) and ann.get("bbox") is None:
        return "has neither a segmentation nor a bbox"
    return None


# --------------------------------------------------------------------------------------------
# results files
# --------------------------------------------------------------------------------------------

def check_results(results, path, gt: Instances, iou_type: str, gt_path) -> tuple[list[dict], set]:
    """Checked copies of COCO results (segmentations as compressed RLE), and stray category ids.

    Results on image ids that are not in the GT are refused (all of them named in one line).
    """

    if isinstance(results, dict) and isinstance(results.get("annotations"), list):
        raise BadInputError(f"{path}: looks like a COCO instances file; --pred takes COCO results "
                            "(a list of {image_id, category_id, segmentation|bbox, score})")
    if not isinstance(results, list):
        raise BadInputError(f"{path}: COCO results must be a JSON list, not {_kind(results)}")
    if not results:
        raise BadInputError(f"{path}: no detections to evaluate")
    key = "segmentation" if iou_type == "segm" else "bbox"
    clean, stray_images, stray_cats = [], set(), set()
    for i, res in enumerate(results):
        if not isinstance(res, dict) or key not in res or "score" not in res or "image_id" not in res \
                or "category_id" not in res:
            raise BadInputError(f"{path}: result {i} lacks image_id, category_id, {key} or score "
                                f"(for --iou-type {iou_type})")
        where = f"{path}: result {i} (image {short(res['image_id'])})"
        if not _id(res["image_id"]):
            raise BadInputError(f"{where}: image_id must be a whole number")
        if not _id(res["category_id"]):
            raise BadInputError(f"{where}: category_id must be a whole number, not {short(res['category_id'])}")
        if not is_number(res["score"]):
            raise BadInputError(f"{where}: score must be a finite number, not {short(res['score'])}")
        if res["image_id"] not in gt.images:
            stray_images.add(res["image_id"])
            continue
        if res["category_id"] not in gt.categories:
            stray_cats.add(res["category_id"])
        entry = {k: res[k] for k in ("image_id", "category_id", "score")}
        if res.get("bbox") is not None:
            if why := check_box(res["bbox"]):
                raise BadInputError(f"{where}: {why}")
            entry["bbox"] = [float(v) for v in res["bbox"]]
        if iou_type == "segm":
            im = gt.images[res["image_id"]]
            try:
                rle = mk.coco_to_rle(res["segmentation"], im["height"], im["width"])
            except mk.MaskError as exc:
                raise BadInputError(f"{where}: {exc}") from exc
            entry["segmentation"] = mk.rle_to_json(rle)
        clean.append(entry)
    if stray_images:
        first = sorted(stray_images)[:5]
        raise BadInputError(f"{path}: {len(stray_images)} image ids are not in {gt_path} "
                            f"(e.g. {', '.join(map(str, first))}); results must refer to GT images")
    if iou_type == "segm" and not all("bbox" in r for r in clean):
        for r in clean:  # pycocotools decides by the first result whether boxes are given
            r.pop("bbox", None)
    return clean, stray_cats
