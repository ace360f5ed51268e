"""Remembered state (QSettings, ``gui.ini`` in the user config dir): layout, datasets, style, model."""

from __future__ import annotations

import shutil
from dataclasses import fields
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 10
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


