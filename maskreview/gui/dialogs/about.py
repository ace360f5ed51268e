"""Help ▸ About: maskreview's version, the versions of the libraries it runs on (read from package
metadata: nothing is imported, so no torch in the GUI process) and where it keeps things."""

from __future__ import annotations

import functools
from html import escape
from importlib import metadata

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout

from maskreview import __version__

LIBRARIES = ("PySide6", "fiftyone", "detectron2", "torch")
DISTRIBUTIONS = {"PySide6": ("PySide6_Essentials",), "detectron2": ("sal-detectron2",)}  # pyproject.toml's names


@functools.lru_cache(maxsize=1)
def _distributions_of_imports() -> dict[str, list[str]]:
    """Import name -> distributions; it reads every installed package's file list (seconds on a busy
    machine), so once per process and only for a name that is not a distribution's own."""
    return metadata.packages_distributions()


def library_version(module: str) -> str:
    """The installed distribution's version of import name ``module`` ("not installed" if none)."""
    for name in (module, *DISTRIBUTIONS.get(module, ())):  # the distributions it comes in: no scan
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    for name in _distributions_of_imports().get(module, []):  # a library installed under another name
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def about_rows(settings=None) -> list[tuple[str, str]]:
    from maskreview.core.store import user_cache_dir, user_config_dir, user_data_dir

    rows = [("maskreview", __version__)]
    rows += [(name, library_version(name)) for name in LIBRARIES]
    rows += [("Settings", str(user_config_dir())), ("Data (datasets, journals)", str(user_data_dir())),
             ("Cache", str(user_cache_dir()))]
    if settings is not None:
        rows.append(("Settings file", settings.q.fileName()))
    return rows


class AboutDialog(QDialog):
    def __init__(self, window):
        super().__init__(window)
        self.setWindowTitle("About maskreview")
        self.rows = about_rows(getattr(window, "settings", None))
        table = "".join(f"<tr><td><b>{escape(k)}</b>&nbsp;&nbsp;</td><td>{escape(v)}</td></tr>" for k, v in self.rows)
        self.label = QLabel(f"<h2>maskreview {escape(__version__)}</h2>"
                            "<p>Review and correct instance segmentation: FiftyOne datasets, detectron2 models.</p>"
                            f"<table>{table}</table>")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setWordWrap(True)
        copy = QPushButton("Copy")
        copy.clicked.connect(lambda: QApplication.clipboard().setText(self.text()))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(buttons)

    def text(self) -> str:
        """The rows as plain text (for a bug report)."""
        return "\n".join(f"{k}: {v}" for k, v in self.rows)
