"""Reading images the same way everywhere: EXIF orientation applied, RGB uint8.

An image whose header promises more pixels than :func:`max_pixels` is refused before anything
is decoded (a decompression bomb: a few bytes that would decode to gigabytes). The limit is
PIL's ``Image.MAX_IMAGE_PIXELS`` unless ``MASKREVIEW_MAX_PIXELS``, ``--max-pixels`` or the app's
``images/max_pixels`` setting raises it (:func:`set_max_pixels`).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from maskreview.core.errors import BadInputError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
MAX_PIXELS_ENV = "MASKREVIEW_MAX_PIXELS"
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # PIL's own limit, read before we ever raise it
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 degrees
_max_pixels: int | None = None  # --max-pixels: wins over everything
_setting_max_pixels: int | None = None  # the app's setting: used when the environment says nothing


def set_max_pixels(limit: int | None) -> None:
    """Allow images of up to ``limit`` pixels in this process (``None``: back to the default)."""
    global _max_pixels
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise BadInputError(f"{limit!r}: the pixel limit must be a positive whole number")
    _max_pixels = limit


def set_setting_max_pixels(limit: int | None) -> None:
    """The app's ``images/max_pixels`` setting: below --max-pixels and the environment variable."""
    global _setting_max_pixels
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise BadInputError(f"images/max_pixels={limit!r}: the pixel limit must be a positive whole number")
    _setting_max_pixels = limit


def max_pixels() -> int:
    """The most pixels an image may have: :func:`set_max_pixels`, else the env var, else the
    app's setting, else PIL's."""
    if _max_pixels is not None:
        return _max_pixels
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return _setting_max_pixels or DEFAULT_MAX_PIXELS
    try:
        limit = int(text.replace("_", ""))
    except ValueError:
        limit = 0
    if limit < 1:
        raise BadInputError(f"{MAX_PIXELS_ENV}={text!r}: must be a positive whole number of pixels")
    return limit


def check_pixels(width: int, height: int, what) -> None:
    """Refuse an image size of more than :func:`max_pixels` pixels, naming ``what``."""
    limit = max_pixels()
    if width * height > limit:
        raise BadInputError(f"{what}: {width}x{height} is {_too_many(width * height, limit)}")


def _too_many(pixels, limit: int) -> str:
    return (f"{pixels} pixels, more than the limit of {limit} (a possible decompression bomb); if you trust "
            f"the file, raise the limit: --max-pixels, {MAX_PIXELS_ENV}, or the app's settings file "
            "(images/max_pixels)")


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def image_header(path: str | os.PathLike) -> tuple[int, int, str]:
    """``(width, height, mime_type)`` as displayed (after EXIF orientation), header only.

    Raises :class:`BadInputError` for a zero-byte or unreadable file, or one of more pixels
    than :func:`max_pixels`.
    """
    from PIL import UnidentifiedImageError

    path = Path(path)
    limit = max_pixels()
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit  # PIL's own check (an error at twice this) stays above ours
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if size == 0:
        raise BadInputError(f"{path}: empty file (0 bytes), not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check below
            with Image.open(path) as img:  # lazy: reads the header, decodes nothing
                width, height = img.size
                check_pixels(width, height, path)
                mime = Image.MIME.get(img.format or "", "image")
                orientation = _orientation(img, path)
    except Image.DecompressionBombError as exc:  # more than twice PIL's limit, which is at least ours
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        raise BadInputError(f"{path}: {_too_many(pixels.group(1) if pixels else 'too many', limit)}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(f"{path}: not a readable image ({exc})") from exc
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    return width, height, mime


def _orientation(img, path: Path) -> int:
    """The EXIF orientation, without decoding: PIL's ``getexif`` decodes a whole PNG to look for
    an eXIf chunk after the pixel data (which OpenCV honours), so PNG chunks are walked here."""
    if img.format != "PNG" or "exif" in img.info:
        return img.getexif().get(0x0112, 1)
    exif = Image.Exif()
    with open(path, "rb") as f:
        f.seek(8)  # the signature
        while len(head := f.read(8)) == 8:
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind == b"eXIf":
                try:
                    exif.load(f.read(length))
                except Exception:  # a damaged eXIf chunk: no orientation, as in OpenCV
                    return 1
                break
            if kind == b"IEND":
                break
            f.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    return exif.get(0x0112, 1)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image as ``H x W x 3`` RGB uint8 with EXIF orientation applied.

    The header is checked first (:func:`image_header`), so nothing larger than it promises,
    within :func:`max_pixels`, is ever allocated.
    """
    import cv2

    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path}: file not found")
    width, height, _ = image_header(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    # IMREAD_COLOR applies the EXIF orientation, like PIL's exif_transpose.
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise BadInputError(f"{path}: cannot decode image")
    if bgr.shape[0] * bgr.shape[1] > width * height:
        raise BadInputError(f"{path}: decodes to {bgr.shape[1]}x{bgr.shape[0]}, more than its header's "
                            f"{width}x{height}")
    return np.ascontiguousarray(bgr[:, :, ::-1])
