"""``core/masks.py`` is the one home of mask geometry (issue #15): no other module reimplements it.

The source of every other module of ``maskreview`` is searched for the idioms each piece of
geometry is written with (comments left out). A line that is about something else, but reads
the same, says so with ``# not mask geometry: <why>``.

The functions themselves are tested in ``tests/test_masks_geometry.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "maskreview"
HOME = PACKAGE / "core" / "masks.py"
EXEMPT = "# not mask geometry:"

IDIOMS = {
    "the rounding rule (masks.round_half_up)": re.compile(r"floor\([^#]*\+\s*0\.5\s*\)"),
    "box clipping (masks.clip_box / masks.paste)": re.compile(
        r"max\(\s*[\w.]+\s*,\s*0\s*\)\s*,\s*max\(\s*[\w.]+\s*,\s*0\s*\)"
        r"|min\(\s*[\w.]+\s*\+\s*[\w.]+(\.shape\[1\])?\s*,\s*width\s*\)\s*,\s*min\(\s*[\w.]+\s*\+\s*[\w.]+(\.shape\[0\])?\s*,\s*height\s*\)"
        # a box rounded outwards and clipped at 0 (masks.pixel_window): max(0, floor(..)), max(int(floor(..)) - m, 0)
        r"|max\(\s*0\s*,\s*(int\()?(np\.|math\.)?(floor|min)\("
        r"|max\(\s*(int\()?(np\.|math\.)?floor\([^#]*?\)\)?\s*(-\s*\w+\s*)?,\s*0\s*\)"),
    "the tight box (masks.mask_bbox)": re.compile(r"(\w+)\[-1\]\s*-\s*\1\[0\]\s*\+\s*1|\.tobytes\(\)\.r?find\(1\)"),
    "mask IoU (masks.placed_iou / masks.bitmap_iou)": re.compile(
        r"count_nonzero\([^()]*&[^()]*\)\s*/|logical_and\([^()]*\)\.sum\(\)\s*/|/\s*union\b"
        r"|\bmask_utils\.iou\(|pycocotools\.mask\.iou\("),
    "RLE encoding and decoding (masks.encode_rle / decode_rle / coco_to_rle)": re.compile(
        r"\bmask_utils\.(encode|decode|frPyObjects|merge)\(|pycocotools\.mask\.(encode|decode|frPyObjects|merge)\("),
}


def _code(line: str) -> str:
    """The line without its comment (a ``#`` inside a string is rare enough here)."""
    return line.split("#", 1)[0]


def find_reimplementations(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == HOME:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if EXEMPT in line:
                continue
            for what, idiom in IDIOMS.items():
                if idiom.search(_code(line)):
                    found.append(f"{path.relative_to(root.parent)}:{n}: {what}: {line.strip()}")
    return found


def test_no_module_but_masks_reimplements_mask_geometry():
    found = find_reimplementations()
    assert not found, "mask geometry outside core/masks.py (call it instead):\n" + "\n".join(found)


def test_each_idiom_is_caught(tmp_path):
    """The search finds the copies this issue removed (as they were written), and not the calls that replaced them."""
    copies = {
        "edit_tools.full_bitmap": "    xs, ys = max(inst.x0, 0), max(inst.y0, 0)\n"
                                  "    xe, ye = min(inst.x0 + inst.w, width), min(inst.y0 + inst.h, height)\n",
        "reading.Dets.placed": "x0 = np.floor(b[:, 0] * w + 0.5).astype(np.int64)\n",
        "masks._round": "    return int(math.floor(v + 0.5))\n",
        "masks.mask_bbox": "    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), 1\n",
        "ops._tight_box": "    first = data.tobytes().find(1)\n",
        "overlay.mask_iou": "    return float(np.count_nonzero(canvas_a & canvas_b)) / union if union else 0.0\n",
        "internals_render.mask_iou": "    return float(np.logical_and(a, b).sum() / union) if union else 0.0\n",
        "journal._decode": "    array = mask_utils.decode({'size': s, 'counts': c}).astype(bool)\n",
        "compare._best_any_class": "        ious = np.asarray(mask_utils.iou(dts, gts, crowd), float)\n",
        "edit_tools.stamp_disk": "    x0, x1 = max(int(np.floor(x - r)), 0), min(int(np.ceil(x + r)) + 1, w)\n",
        "assist._crop": "    return (max(int(np.floor(x0)) - margin, 0), max(int(np.floor(y0)) - margin, 0),\n",
        "internals_render._zoom_window": "    return (int(max(0, np.floor(x0 - mx))), int(max(0, np.floor(y0 - my))),\n",
        "pair_diff.pair_diff": "    x0 = max(0, min(b[0] for b in boxes))\n",
    }
    for name, source in copies.items():
        (tmp_path / f"{name.replace('.', '_')}.py").write_text(source)
    (tmp_path / "calls.py").write_text("bitmap = mk.paste(x0, y0, mask, height, width)\niou = mk.placed_iou(a, b)\n"
                                       "ious = mk.geometry_ious(dts, gts, crowd)\nw = mk.pixel_window(x - r, y - r, x + r, y + r, h, w)\n"
                                       "n = max(0, count)\nk = max(len(a), 0)\n"
                                       "x = mk.round_half_up(v)  # floor(v + 0.5)\n"
                                       "a = math.floor(s + 0.5)  # not mask geometry: torchvision's rounding\n")
    found = find_reimplementations(tmp_path)
    assert {line.split(":")[0] for line in found} == {f"{tmp_path.name}/{n.replace('.', '_')}.py" for n in copies}
