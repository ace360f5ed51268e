"""Repack the cp310-only ``sal-detectron2`` wheel as a pure-Python ``py3-none-any`` wheel.

detectron2 is not published on PyPI. ``sal-detectron2`` republishes it, but only as a
CPython 3.10 wheel carrying a compiled ``_C`` extension. Mask R-CNN R50-FPN runs entirely on
torchvision ops, so we drop ``_C``, relax the ``numpy<2`` pin, declare the ``fvcore`` and
``iopath`` packages detectron2 imports, and retag the wheel so pip installs it on any Python 3.

Usage: python packaging/repack_detectron2.py SRC_WHEEL OUT_DIR
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import zipfile
from pathlib import Path

NAME = "sal_detectron2"
EXTRA_REQUIREMENTS = ["fvcore>=0.1.5", "iopath>=0.1.9", "setuptools<81"]


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _fix_metadata(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist: numpy"):
            line = "Requires-Dist: numpy"
        elif line.startswith("Requires-Dist: black"):
            continue  # a formatter detectron2 only uses for pretty-printing configs (lazily)
        lines.append(line)
    head, sep, body = "\n".join(lines).partition("\n\n")
    head += "".join(f"\nRequires-Dist: {req}" for req in EXTRA_REQUIREMENTS)
    return head + sep + body + ("\n" if not body.endswith("\n") else "")


def _fix_wheel(text: str) -> str:
    text = re.sub(r"^Root-Is-Purelib: .*$", "Root-Is-Purelib: true", text, flags=re.M)
    return re.sub(r"^Tag: .*$", "Tag: py3-none-any", text, flags=re.M)


def repack(src: Path, out_dir: Path) -> Path:
    version = src.name.split("-")[1]
    dist_info = f"{NAME}-{version}.dist-info"
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / f"{NAME}-{version}-py3-none-any.whl"
    tmp = dst.with_suffix(".tmp")
    records = []
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            name = info.filename
            if name.endswith(".so") or name == f"{dist_info}/RECORD":
                continue
            data = zin.read(name)
            if name == f"{dist_info}/METADATA":
                data = _fix_metadata(data.decode()).encode()
            elif name == f"{dist_info}/WHEEL":
                data = _fix_wheel(data.decode()).encode()
            zout.writestr(name, data)
            records.append(f"{name},{_record_hash(data)},{len(data)}")
        records.append(f"{dist_info}/RECORD,,")
        zout.writestr(f"{dist_info}/RECORD", "\n".join(records) + "\n")
    tmp.replace(dst)
    return dst


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    print(repack(Path(sys.argv[1]), Path(sys.argv[2])))
