"""The freedesktop launcher and AppStream metainfo validate; `maskreview desktop install|uninstall`
registers them (with the icons and the COCO JSON file type) for the current user, and removes them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO
from maskreview import __version__
from maskreview.desktop import APP_ID, HICOLOR_SIZES, MIME_TYPE, planned_files

LINUX = REPO / "packaging" / "linux"
DESKTOP = LINUX / f"{APP_ID}.desktop"
METAINFO = LINUX / f"{APP_ID}.metainfo.xml"
ENTRY = Path(sys.executable).parent / "maskreview"  # the venv's console script


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: apt-get install {package}; make setup installs it "
                    "from packaging/system-packages.txt)")
    return path


def _desktop_file_validate(path: Path) -> None:
    out = subprocess.run([_tool("desktop-file-validate", "desktop-file-utils"), str(path)],
                         capture_output=True, text=True, timeout=60)
    problems = [line for line in out.stdout.splitlines() if ": hint:" not in line]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


def test_launcher_validates():
    _desktop_file_validate(DESKTOP)
    text = DESKTOP.read_text()
    assert f"Icon={APP_ID}\n" in text and f"MimeType={MIME_TYPE};" in text


def test_metainfo_validates_and_matches_the_release():
    out = subprocess.run([_tool("appstreamcli", "appstream"), "validate", "--no-net", "--pedantic", str(METAINFO)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    # only pedantic (P:) and info (I:) remarks are allowed, no warnings (W:) or errors (E:)
    assert not re.search(r"^[WE]: ", out.stdout, re.M), out.stdout
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("id") == APP_ID
    assert root.find("launchable").text == DESKTOP.name
    assert root.find("content_rating").get("type").startswith("oars-")
    assert root.find("releases/release").get("version") == __version__
    shots = [el.text for el in root.iter("image")]
    assert len(shots) >= 2
    for url in shots:  # each URL names a committed screenshot of the real window
        local = REPO / url.split("/main/", 1)[1]
        assert local.is_file() and local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", url


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_DATA_HOME": str(home)}
    return subprocess.run([str(ENTRY), *args], capture_output=True, text=True, env=env, cwd=home.parent, timeout=300)


def test_desktop_install_then_uninstall(tmp_path):
    home = tmp_path / "share"
    out = _cli("desktop", "install", home=home)
    assert out.returncode == 0, out.stderr[-2000:]
    planned = planned_files(home)
    assert len(planned) == 3 + len(HICOLOR_SIZES)
    assert all(dest.is_file() for dest in planned), [d for d in planned if not d.is_file()]
    launcher = home / "applications" / f"{APP_ID}.desktop"
    _desktop_file_validate(launcher)
    assert f"\nExec={ENTRY} open %f\n" in launcher.read_text()
    assert (home / "icons/hicolor/256x256/apps" / f"{APP_ID}.png").read_bytes() == \
        (REPO / "icons/hicolor/256x256/apps" / f"{APP_ID}.png").read_bytes()
    if shutil.which("update-mime-database"):  # the user's MIME database knows COCO JSON by name now
        assert f"{MIME_TYPE}:*.coco.json" in (home / "mime" / "globs2").read_text()

    out = _cli("desktop", "uninstall", home=home)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not any(dest.exists() for dest in planned)
    if shutil.which("update-mime-database"):
        assert MIME_TYPE not in (home / "mime" / "globs2").read_text()
