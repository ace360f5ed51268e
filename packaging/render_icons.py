"""Render icons/app.svg to the freedesktop hicolor PNG sizes under icons/hicolor/.

Run after changing icons/app.svg:  .venv/bin/python packaging/render_icons.py
The PNGs are committed; the launcher, the AppStream metainfo and `maskreview desktop install` use them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QByteArray, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from maskreview.desktop import APP_ID, HICOLOR_SIZES  # noqa: E402

ICONS = Path(__file__).resolve().parents[1] / "icons"
# the SVG draws in currentColor (it follows the palette inside the app); a launcher needs a fixed one
APP_COLOR = "#2f6fbf"


def render(svg: Path, out_root: Path) -> list[Path]:
    renderer = QSvgRenderer(QByteArray(svg.read_text().replace("currentColor", APP_COLOR).encode()))
    if not renderer.isValid():
        raise SystemExit(f"render_icons: {svg} is not a valid SVG")
    written = []
    for size in HICOLOR_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        out = out_root / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out), "PNG"):
            raise SystemExit(f"render_icons: could not write {out}")
        written.append(out)
    return written


def main() -> None:
    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (QImage painting needs one)
    for path in render(ICONS / "app.svg", ICONS / "hicolor"):
        print(path.relative_to(ICONS.parent))


if __name__ == "__main__":
    main()
