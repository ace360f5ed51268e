"""An installed wheel (not the checkout) finds its icons and the demo model."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_wheel_carries_icons_and_demo_model(tmp_path):
    # build from a copy: setuptools writes build/ and *.egg-info beside the sources
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "build", "*.egg-info",
                                                             "__pycache__", ".pytest_cache", "bench", "tests"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("maskreview-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    site = next(venv.glob("lib/python3*/site-packages"))
    # dependencies come from the test environment; maskreview itself only from the wheel
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True, timeout=600)
    probe = ("import maskreview, maskreview.core.models as m; from maskreview.gui.actions import ICONS_DIR; "
             "print(maskreview.__file__); print(m.resolve_model('demo').config_file); "
             "print(len(list(ICONS_DIR.glob('*.svg'))))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300, env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    package, config, n_icons = out.stdout.split()
    assert Path(package).is_relative_to(venv) and Path(config).is_relative_to(venv)
    assert Path(config).is_file() and (Path(config).parent / "model_final.pth").stat().st_size > 10_000_000
    assert int(n_icons) >= 10
