"""Reading images the same way everywhere: EXIF orientation applied, RGB uint8."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from maskreview.core.errors import BadInputError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 degrees


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def image_header(path: str | os.PathLike) -> tuple[int, int, str]:
    """``(width, height, mime_type)`` as displayed (after EXIF orientation), header only.

    Raises :class:`BadInputError` for a zero-byte or unreadable file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if size == 0:
        raise BadInputError(f"{path}: empty file (0 bytes), not an image")
    try:
        with Image.open(path) as img:
            width, height = img.size
            mime = Image.MIME.get(img.format or "", "image")
            orientation = img.getexif().get(0x0112, 1) if hasattr(img, "getexif") else 1
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(f"{path}: not a readable image ({exc})") from exc
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    return width, height, mime


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image as ``H x W x 3`` RGB uint8 with EXIF orientation applied."""
    import cv2

    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8) if path.exists() else None
    if data is None:
        raise BadInputError(f"{path}: file not found")
    if data.size == 0:
        raise BadInputError(f"{path}: empty file (0 bytes), not an image")
    # IMREAD_COLOR applies the EXIF orientation, like PIL's exif_transpose.
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise BadInputError(f"{path}: cannot decode image")
    return np.ascontiguousarray(bgr[:, :, ::-1])
