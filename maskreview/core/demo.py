"""Demo data: synthetic scenes with exact instance masks, and a real-photo set without labels.

The synthetic scenes are deterministic from ``(seed, index)``: textured backgrounds, five shape
classes, sizes across COCO small / medium / large, and instances that overlap. An instance's
ground-truth mask is its *visible* part, so occluded objects have holes and several parts.
Scenes are written as PNG images plus a COCO instances JSON with RLE segmentations.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from maskreview.core import masks as mk
from maskreview.core.progress import Progress
from maskreview.core.sources import open_source
from maskreview.core.store import connect, user_cache_dir

CLASSES = ("circle", "square", "triangle", "ring", "cross")
MIN_VISIBLE_FRACTION = 0.4  # placements that would hide more of any instance are rejected
MIN_VISIBLE_PIXELS = 12
REAL_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "colorwheel")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2

    base = rng.uniform(40, 215, size=3)
    coarse = rng.normal(0, 28, size=(rng.integers(3, 9), rng.integers(3, 9), 3)).astype(np.float32)
    img = base + cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = rng.integers(0, 3)
    if kind == 0:  # stripes
        angle, period = rng.uniform(0, math.pi), rng.uniform(6, 24)
        wave = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
        img += (wave * rng.uniform(6, 18))[..., None]
    elif kind == 1:  # checker
        cell = int(rng.integers(8, 32))
        checker = ((xx // cell + yy // cell) % 2) * 2 - 1
        img += (checker * rng.uniform(5, 14))[..., None]
    img += rng.normal(0, rng.uniform(3, 9), size=img.shape)
    return img


def _shape_mask(rng: np.random.Generator, cls: str, size: int, diameter: float) -> np.ndarray:
    import cv2

    canvas = np.zeros((size, size), dtype=np.uint8)
    r = diameter / 2
    margin = r * 0.3
    cx, cy = rng.uniform(-margin, size + margin, size=2)
    theta = rng.uniform(0, 2 * math.pi)

    def rotated(points: np.ndarray) -> np.ndarray:
        c, s = math.cos(theta), math.sin(theta)
        rot = points @ np.array([[c, s], [-s, c]])
        return np.round(rot + [cx, cy]).astype(np.int32)

    if cls == "circle":
        cv2.circle(canvas, (round(cx), round(cy)), max(2, round(r)), 1, -1)
    elif cls == "ring":
        cv2.circle(canvas, (round(cx), round(cy)), max(3, round(r)), 1, -1)
        cv2.circle(canvas, (round(cx), round(cy)), max(1, round(r * rng.uniform(0.45, 0.6))), 0, -1)
    elif cls == "square":
        h = r / math.sqrt(2) * 1.25
        cv2.fillPoly(canvas, [rotated(np.array([[-h, -h], [h, -h], [h, h], [-h, h]]))], 1)
    elif cls == "triangle":
        pts = [[r * math.cos(a), r * math.sin(a)] for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
        cv2.fillPoly(canvas, [rotated(np.array(pts))], 1)
    elif cls == "cross":
        a, b = r, r * 0.34
        for pts in ([[-a, -b], [a, -b], [a, b], [-a, b]], [[-b, -a], [b, -a], [b, a], [-b, a]]):
            cv2.fillPoly(canvas, [rotated(np.array(pts))], 1)
    else:  # pragma: no cover
        raise ValueError(cls)
    return canvas.astype(bool)


def _paint(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray) -> None:
    """Fill a shape with a saturated colour, a shading gradient and a little grain."""
    color = rng.uniform(0, 255, size=3)
    color[rng.integers(0, 3)] = rng.choice([rng.uniform(0, 40), rng.uniform(215, 255)])
    ys, xs = np.nonzero(mask)
    g = rng.normal(size=2)
    shade = ((xs - xs.mean()) * g[0] + (ys - ys.mean()) * g[1]) / (np.ptp(xs) + np.ptp(ys) + 1) * 40
    img[ys, xs] = color + shade[:, None] + rng.normal(0, 4, size=(len(xs), 3))


def make_scene(seed: int, index: int, size: int = 256):
    """One scene: ``(rgb uint8 image, [(class name, visible bitmap), ...])``, deterministic."""
    rng = np.random.default_rng([seed, index])
    img = _background(rng, size)
    n_objects = int(rng.integers(2, 8))
    full: list[tuple[str, np.ndarray]] = []  # (class, full mask) in painting order
    for _ in range(n_objects * 6):
        if len(full) == n_objects:
            break
        cls = CLASSES[rng.integers(0, len(CLASSES))]
        diameter = math.exp(rng.uniform(math.log(16), math.log(size * 0.7)))
        mask = _shape_mask(rng, cls, size, diameter)
        if mask.sum() < MIN_VISIBLE_PIXELS * 2:
            continue
        candidate = full + [(cls, mask)]
        visible = _visible(candidate)
        if all(v.sum() >= max(MIN_VISIBLE_PIXELS, MIN_VISIBLE_FRACTION * m.sum()) for v, (_, m) in zip(visible, candidate)):
            full = candidate
    for cls, mask in full:
        _paint(rng, img, mask)
    image = np.clip(img, 0, 255).astype(np.uint8)
    return image, [(cls, vis) for (cls, _), vis in zip(full, _visible(full))]


def _visible(ordered: list[tuple[str, np.ndarray]]) -> list[np.ndarray]:
    covered = np.zeros_like(ordered[0][1]) if ordered else None
    out = []
    for _, mask in reversed(ordered):
        out.append(mask & ~covered)
        covered = covered | mask
    return out[::-1]


def write_demo_dataset(out_dir: str | Path, n: int = 100, seed: int = 0, size: int = 256,
                       progress: Progress | None = None) -> Path:
    """Write ``n`` scenes as ``out_dir/images/*.png`` + ``out_dir/annotations.json``."""
    import cv2

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    progress = progress or Progress()
    progress.start(n, "writing demo scenes")
    categories = [{"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(CLASSES)]
    cat_id = {c["name"]: c["id"] for c in categories}
    images, annotations = [], []
    for index in range(n):
        progress.check()
        image, instances = make_scene(seed, index, size)
        file_name = f"{seed:03d}_{index:05d}.png"
        cv2.imwrite(str(out / "images" / file_name), image[:, :, ::-1])
        images.append({"id": index + 1, "file_name": file_name, "width": size, "height": size})
        for cls, bitmap in instances:
            rle = mk.encode_rle(bitmap)
            annotations.append({
                "id": len(annotations) + 1, "image_id": index + 1, "category_id": cat_id[cls],
                "segmentation": mk.rle_to_json(rle), "area": float(bitmap.sum()),
                "bbox": [float(v) for v in mk.mask_bbox(bitmap)], "iscrowd": 0,
            })
        progress.advance()
    coco = {
        "info": {"description": f"maskreview synthetic demo, seed {seed}, {n} scenes of {size}px"},
        "images": images, "annotations": annotations, "categories": categories,
    }
    path = out / "annotations.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(coco))
    tmp.replace(path)
    progress.finish()
    return path


def write_real_photos(out_dir: str | Path) -> Path:
    """Real photos without labels, from scikit-image's bundled data, as PNG files."""
    import cv2
    import skimage.data

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in REAL_PHOTOS:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        cv2.imwrite(str(out / f"{name}.png"), np.ascontiguousarray(image[:, :, 2::-1]))
    return out


DEMO_DATASET = "maskreview-demo"
DEMO_SEED, DEMO_SCENES = 0, 120


def ensure_demo_dataset(progress: Progress | None = None):
    """The dataset ``make run`` opens: held-out synthetic scenes (seed 0; training uses others)."""

    folder = user_cache_dir() / f"demo-seed{DEMO_SEED}-n{DEMO_SCENES}"
    if (folder / "annotations.json").exists():
        fo = connect()
        if DEMO_DATASET in fo.list_datasets():
            return fo.load_dataset(DEMO_DATASET)
    else:
        # A first start: the scenes need no database, so they are written while FiftyOne is
        # imported and its mongod starts (seconds of waiting that were spent before the writing).
        with ThreadPoolExecutor(1, thread_name_prefix="demo-scenes") as pool:
            written = pool.submit(write_demo_dataset, folder, DEMO_SCENES, DEMO_SEED, progress=progress)
            fo = connect()
            written.result()
        if DEMO_DATASET in fo.list_datasets():  # its scenes' files were deleted: written again above
            return fo.load_dataset(DEMO_DATASET)
    return open_source(folder / "annotations.json", name=DEMO_DATASET, progress=progress)
