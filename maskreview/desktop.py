"""Register the app with the Linux desktop for the current user (XDG dirs, no root).

``maskreview desktop install`` copies the launcher, the hicolor icons, the AppStream metainfo and a
MIME type for COCO instances JSON from packaging/linux/ and icons/ (shipped as package data) into
``$XDG_DATA_HOME``; ``uninstall`` removes exactly those files. Qt-free.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

APP_ID = "io.github.maskreview.MaskReview"
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
MIME_TYPE = "application/x-coco-instances+json"



def linux_dir() -> Path:
    return Path(str(files("maskreview.freedesktop")))  # packaging/linux/ in the checkout


def desktop_file() -> Path:
    return linux_dir() / f"{APP_ID}.desktop"


def data_home() -> Path:
    from platformdirs import user_data_path

    return user_data_path()  # $XDG_DATA_HOME or ~/.local/share


def _icon_png(size: int) -> Path:
    return Path(str(files("maskreview.icons"))) / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def planned_files(home: Path | None = None) -> dict[Path, Path]:
    """Destination -> source for everything ``install`` writes (the desktop file is rewritten)."""
    home = home or data_home()
    plan = {
        home / "applications" / f"{APP_ID}.desktop": desktop_file(),
        home / "metainfo" / f"{APP_ID}.metainfo.xml": linux_dir() / f"{APP_ID}.metainfo.xml",
        home / "mime" / "packages" / f"{APP_ID}.xml": linux_dir() / f"{APP_ID}.mime.xml",
    }
    for size in HICOLOR_SIZES:
        plan[home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"] = _icon_png(size)
    return plan


def launcher_command() -> list[str]:
    """The installed ``maskreview`` entry point that is running now (else the one on PATH, else -m)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "maskreview" and argv0.is_file():
        return [str(argv0.absolute())]
    found = shutil.which("maskreview")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "maskreview"]


def _desktop_quote(arg: str) -> str:
    # Desktop Entry spec, "The Exec key": quote with "..." and escape ", `, $ and \ inside
    if arg and not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
        return arg
    return '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'


def desktop_entry_text(command: list[str]) -> str:
    exec_line = " ".join(_desktop_quote(a) for a in command) + " open %f"
    lines = []
    for line in desktop_file().read_text().splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + exec_line
        elif line.startswith("TryExec="):
            line = "TryExec=" + command[0]
        lines.append(line)
    return "\n".join(lines) + "\n"


def _refresh_caches(home: Path) -> None:
    """Tell the desktop about the change when its tools are installed; never fail without them."""
    for tool, target in (("update-mime-database", home / "mime"),
                         ("update-desktop-database", home / "applications"),
                         ("gtk-update-icon-cache", home / "icons" / "hicolor")):
        exe = shutil.which(tool)
        if exe is None or not target.is_dir():
            continue
        args = [exe, "-f", "-t", "-q", str(target)] if tool == "gtk-update-icon-cache" else [exe, str(target)]
        try:
            subprocess.run(args, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.SubprocessError):
            pass


def install(home: Path | None = None, command: list[str] | None = None) -> list[Path]:
    home = home or data_home()
    written = []
    for dest, src in planned_files(home).items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.suffix == ".desktop":
            dest.write_text(desktop_entry_text(command or launcher_command()))
        else:
            shutil.copyfile(src, dest)
        written.append(dest)
    _refresh_caches(home)
    return written


def uninstall(home: Path | None = None) -> list[Path]:
    home = home or data_home()
    removed = []
    for dest in planned_files(home):
        if dest.is_file():
            dest.unlink()
            removed.append(dest)
    _refresh_caches(home)
    return removed
