"""Images whose header promises more pixels than the limit are refused before decoding, and named."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from maskreview.core import images
from maskreview.core.errors import BadInputError


def bomb_png(path, width: int, height: int) -> None:
    """A valid PNG header claiming ``width x height`` RGB pixels, with almost no data (~70 bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


def _png(path, w=8, h=6):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path)


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch):
    monkeypatch.delenv(images.MAX_PIXELS_ENV, raising=False)
    yield
    images.set_max_pixels(None)


@pytest.mark.parametrize("size", [(60000, 60000), (10000, 10000)])  # past PIL's error, past its warning
def test_header_over_the_limit_is_refused_by_name(tmp_path, size):
    path = tmp_path / "bomb.png"
    bomb_png(path, *size)
    for read in (images.image_header, images.read_image):
        with pytest.raises(BadInputError, match=r"bomb\.png: .*limit of 89478485.*--max-pixels"):
            read(path)


def test_the_limit_comes_from_the_setting_else_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    _png(path, 8, 6)
    monkeypatch.setenv(images.MAX_PIXELS_ENV, "47")
    with pytest.raises(BadInputError, match="limit of 47"):
        images.image_header(path)
    images.set_max_pixels(48)  # --max-pixels wins over the environment
    assert images.image_header(path)[:2] == (8, 6)
    images.set_max_pixels(None)
    monkeypatch.setenv(images.MAX_PIXELS_ENV, "lots")
    with pytest.raises(BadInputError, match="MASKREVIEW_MAX_PIXELS='lots'"):
        images.image_header(path)


def test_a_lower_limit_refuses_ordinary_images(tmp_path):
    path = tmp_path / "small.png"
    _png(path, 8, 6)
    images.set_max_pixels(47)
    with pytest.raises(BadInputError, match=r"small\.png: 8x6 is 48 pixels, more than the limit of 47"):
        images.read_image(path)
    images.set_max_pixels(48)
    assert images.read_image(path).shape == (6, 8, 3)


def test_gui_read_path_names_the_bomb(tmp_path):
    from maskreview.gui.canvas.sample import _decode

    path = tmp_path / "bomb.png"
    bomb_png(path, 60000, 60000)
    image, error = _decode(str(path))
    assert image is None and "bomb.png" in error and "decompression bomb" in error


@pytest.mark.slow
def test_cli_import_names_and_skips_the_bomb(fo, tmp_path):
    bomb = tmp_path / "photos" / "bomb.png"
    bomb_png(bomb, 60000, 60000)
    alone = run_cli("import", str(bomb))
    assert alone.returncode == 2, alone.stderr
    assert alone.stderr.count("\n") == 1 and "bomb.png" in alone.stderr and "Traceback" not in alone.stderr
    _png(tmp_path / "photos" / "good.png")
    folder = run_cli("import", str(tmp_path / "photos"))
    assert folder.returncode == 2 and "bomb.png" in folder.stderr and "Traceback" not in folder.stderr
    assert not [n for n in fo.list_datasets() if n.startswith("photos-")]
    skipped = run_cli("import", str(tmp_path / "photos"), "--skip-bad", "--json")
    assert skipped.returncode == 0, skipped.stderr
    assert '"samples": 1' in skipped.stdout
    assert "skipped" in skipped.stderr and "bomb.png" in skipped.stderr

    small = tmp_path / "small" / "small.png"
    _png(small, 8, 6)
    lowered = run_cli("import", str(small), "--max-pixels", "47")
    assert lowered.returncode == 2 and "limit of 47" in lowered.stderr
    raised = run_cli("import", str(small), "--max-pixels", "48", "--json")
    assert raised.returncode == 0 and '"samples": 1' in raised.stdout, raised.stderr


def test_the_app_setting_sets_the_limit_below_the_environment(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from maskreview.gui.app import apply_pixel_limit
    from maskreview.gui.settings import Settings

    path = tmp_path / "small.png"
    _png(path, 8, 6)
    settings = Settings(tmp_path / "settings.ini")
    settings.set_value("images/max_pixels", "47")
    said = []
    window = SimpleNamespace(settings=settings, notify=said.append)
    try:
        apply_pixel_limit(window)
        with pytest.raises(BadInputError, match="limit of 47"):
            images.image_header(path)
        monkeypatch.setenv(images.MAX_PIXELS_ENV, "48")  # the environment wins over the setting
        assert images.image_header(path)[:2] == (8, 6)
        monkeypatch.delenv(images.MAX_PIXELS_ENV)
        settings.set_value("images/max_pixels", "many")
        apply_pixel_limit(window)
        assert said and "images/max_pixels='many'" in said[0]
        assert images.max_pixels() == images.DEFAULT_MAX_PIXELS
    finally:
        images.set_setting_max_pixels(None)


def test_png_orientation_after_the_pixels_is_found_without_decoding(tmp_path):
    """An eXIf chunk after IDAT: OpenCV rotates the image, so the header must say so too."""
    img = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "early.png", exif=exif.tobytes())
    data = (tmp_path / "early.png").read_bytes()
    chunks, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        chunks.append((data[pos + 4:pos + 8], data[pos:pos + 12 + length]))
        pos += 12 + length
    late = [c for k, c in chunks if k not in (b"eXIf", b"IEND")] + [c for k, c in chunks if k in (b"eXIf", b"IEND")]
    (tmp_path / "late.png").write_bytes(data[:8] + b"".join(late))
    for name in ("early.png", "late.png"):
        assert images.image_header(tmp_path / name)[:2] == (20, 40)
        assert images.read_image(tmp_path / name).shape == (40, 20, 3)
