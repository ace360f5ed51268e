"""Settings live in the XDG config dir; an INI that older versions kept in the data dir moves over once."""

from __future__ import annotations

from maskreview.gui.settings import Settings, settings_path


def _write_recent(path, name):
    settings = Settings(path)
    settings.add_recent(name)
    settings.q.sync()


def test_settings_are_in_the_xdg_config_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("MASKREVIEW_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("MASKREVIEW_DATA_DIR", str(tmp_path / "data"))
    assert settings_path() == tmp_path / "xdg-config" / "maskreview" / "gui.ini"


def test_old_settings_move_over_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKREVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    old = tmp_path / "data" / "gui.ini"
    old.parent.mkdir()
    _write_recent(old, "from-old-version")

    path = settings_path()
    assert path == tmp_path / "config" / "gui.ini" and path.is_file() and not old.exists()
    assert Settings().recent() == ["from-old-version"]

    # once moved, a stray old file (an older version started again) never replaces the new one
    _write_recent(old, "stray")
    assert settings_path() == path and old.exists()
    assert Settings().recent() == ["from-old-version"]
