"""The wheel carries everything: installed with `pip install --target DIR` and run from outside the
checkout, it finds its own demo model, icons and desktop files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO
from maskreview import __version__

pytestmark = pytest.mark.slow


def _source_files() -> list[str]:
    """What a clean checkout holds (tracked + new, not ignored), without tests and benchmarks."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True, timeout=60)
    return [f for f in out.stdout.splitlines() if not f.startswith(("tests/", "bench/")) and (REPO / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # build from a copy: setuptools writes build/ and *.egg-info beside the sources
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for rel in _source_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                          "-w", str(tmp / "dist")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return next((tmp / "dist").glob("maskreview-*.whl"))


def test_wheel_holds_every_module_and_the_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    # pyproject lists the packages by hand (package-dir rules out find): a new subpackage must be added
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "maskreview").rglob("*.py")}
    assert not modules - names, f"modules missing from the wheel (add their package to pyproject): {modules - names}"
    for data in ["maskreview/icons/app.svg", "maskreview/icons/fit.svg",
                 "maskreview/icons/hicolor/512x512/apps/io.github.maskreview.MaskReview.png",
                 "maskreview/resources/models/demo-r18-fpn.yaml", "maskreview/resources/models/demo/model_final.pth",
                 "maskreview/resources/models/demo/classes.json",
                 "maskreview/freedesktop/io.github.maskreview.MaskReview.desktop",
                 "maskreview/freedesktop/io.github.maskreview.MaskReview.metainfo.xml"]:
        assert data in names, data
    assert not any(".data/data/" in n for n in names), "nothing goes to data-files (a --target install has no prefix)"


def test_target_install_runs_from_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "target"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                          str(wheel)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    # dependencies come from this venv's site-packages; maskreview itself must come from DIR, not
    # from the checkout's editable install (its finder sits after PYTHONPATH on the import path)
    env = {**os.environ, "PYTHONPATH": str(target), "QT_QPA_PLATFORM": "offscreen"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=300)

    probe = run("-c", "import maskreview, maskreview.core.model.registry as m, maskreview.desktop as d; "
                      "from maskreview.gui.actions import ICONS_DIR; "
                      "print(maskreview.__file__); print(m.DEMO_MODEL_DIR); print(ICONS_DIR); print(d.desktop_file())")
    assert probe.returncode == 0, probe.stderr[-3000:]
    for line in probe.stdout.split():
        assert Path(line).is_relative_to(target) and Path(line).exists(), probe.stdout
    icons = Path(probe.stdout.split()[2])
    assert len(list(icons.glob("*.svg"))) >= 10

    version = run("-m", "maskreview", "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"maskreview {__version__}", version
    models = run("-m", "maskreview", "models")
    assert models.returncode == 0, models.stderr[-3000:]
    builtin = models.stdout.split("built-in:", 1)[1].splitlines()[1]
    assert builtin.strip() == "demo", models.stdout  # "(weights missing)" would follow without the .pth
