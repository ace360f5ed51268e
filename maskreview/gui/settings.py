"""Remembered state (QSettings, ``gui.ini`` in the user config dir): layout, datasets and the sample
last viewed in each, style, model, theme, colours, default thresholds, changed keys (``gui.keymap``)."""

from __future__ import annotations

import shutil
from urllib.parse import quote
from dataclasses import fields
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 10
THEMES = ("system", "light", "dark")
COLOR_NAMES = {"tp": "True positive", "fp": "False positive", "fn": "False negative (missed)",
               "missed": "Boundary: pixels the prediction missed", "added": "Boundary: pixels the prediction added",
               "field0": "First field (ground truth) in colour-by-field", "field1": "Second field (predictions)"}
_STYLE_KEYS = ("opacity", "color_mode", "fills", "contours", "boxes", "labels", "conf_threshold")


def settings_path() -> Path:
    """``<config dir>/gui.ini``; an INI that older versions kept in the data dir moves there once."""
    from maskreview.core.store import user_config_dir, user_data_dir

    path, old = user_config_dir() / "gui.ini", user_data_dir() / "gui.ini"
    if old.is_file() and not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(old, path)
        except OSError:
            return old  # not movable (read-only dir): keep using it rather than start from scratch
    return path


class Settings:
    def __init__(self, path=None):
        self.q = QSettings(str(path or settings_path()), QSettings.Format.IniFormat)

    # window layout ------------------------------------------------------------------
    def save_window(self, window) -> None:
        self.q.setValue("window/geometry", window.saveGeometry())
        self.q.setValue("window/state", window.saveState())

    def restore_window(self, window) -> None:
        geometry, state = self.q.value("window/geometry"), self.q.value("window/state")
        if isinstance(geometry, QByteArray):
            window.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            window.restoreState(state)

    # datasets -----------------------------------------------------------------------
    def recent(self) -> list[str]:
        value = self.q.value("datasets/recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def add_recent(self, name: str) -> None:
        items = [name] + [r for r in self.recent() if r != name]
        self.q.setValue("datasets/recent", items[:MAX_RECENT])
        self.q.setValue("datasets/last", name)

    def last_dataset(self) -> str | None:
        return self.q.value("datasets/last") or None

    def last_sample(self, dataset: str) -> str | None:
        """The sample last shown in ``dataset`` (reopened there on the next start)."""
        return self.q.value(f"last_sample/{quote(dataset, safe='')}") or None

    def set_last_sample(self, dataset: str, sample_id: str) -> None:
        self.q.setValue(f"last_sample/{quote(dataset, safe='')}", sample_id)

    # appearance and defaults (File ▸ Settings) ----------------------------------------
    def theme(self) -> str:
        value = str(self.q.value("appearance/theme", "system"))
        return value if value in THEMES else "system"

    def set_theme(self, theme: str) -> None:
        self.q.setValue("appearance/theme", theme)

    def colors(self) -> dict[str, tuple[int, int, int]]:
        """The colours the user chose (``#rrggbb`` in the file), by name (``COLOR_NAMES``)."""
        out = {}
        for name in COLOR_NAMES:
            text = str(self.q.value(f"colors/{name}", ""))
            if len(text) == 7 and text.startswith("#"):
                try:
                    out[name] = tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
                except ValueError:
                    continue
        return out

    def set_color(self, name: str, rgb: tuple[int, int, int] | None) -> None:
        if rgb is None:
            self.q.remove(f"colors/{name}")
        else:
            self.q.setValue(f"colors/{name}", "#{:02x}{:02x}{:02x}".format(*rgb))

    def default_thresholds(self) -> tuple[float | None, float | None]:
        """``(confidence, iou)`` to start with (None: not set)."""
        def number(key):
            try:
                value = float(self.q.value(key))
            except (TypeError, ValueError):
                return None
            return value if 0.0 <= value <= 1.0 else None
        return number("defaults/confidence"), number("defaults/iou")

    def set_default_thresholds(self, confidence: float, iou: float) -> None:
        self.q.setValue("defaults/confidence", float(confidence))
        self.q.setValue("defaults/iou", float(iou))

    # overlay style and model --------------------------------------------------------
    def save_style(self, style) -> None:
        for key in _STYLE_KEYS:
            self.q.setValue(f"style/{key}", getattr(style, key))

    def load_style(self, style) -> dict:
        """Saved style values, converted to the types of ``style``'s attributes."""
        types = {f.name: type(getattr(style, f.name)) for f in fields(style) if f.name in _STYLE_KEYS}
        out = {}
        for key, kind in types.items():
            value = self.q.value(f"style/{key}")
            if value is None:
                continue
            if kind is bool:
                value = value if isinstance(value, bool) else str(value).lower() == "true"
            out[key] = kind(value)
        return out

    def value(self, key: str, default=None):
        return self.q.value(key, default)

    def set_value(self, key: str, value) -> None:
        self.q.setValue(key, value)

    def sync(self) -> None:
        self.q.sync()


