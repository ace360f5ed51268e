"""User key maps (tag keys, verdict keys): a JSON object in the user's config dir over defaults.

One reader and one writer for every key map, so each refuses a bad file the same way (one line,
:class:`BadInputError`) and is replaced atomically on save (a crash never leaves half a file).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from maskreview.core.errors import BadInputError


def read_key_map(path: Path, defaults: dict, entry_ok: Callable[[object, object], bool], what: str) -> dict:
    """``defaults`` updated with the file at ``path`` (when there is one). ``what`` names the map in
    the refusal (e.g. "a key map is a JSON object of key -> tag name"); ``entry_ok(key, value)``
    says whether one entry of the user's object is valid."""
    keys = dict(defaults)
    if not path.is_file():
        return keys
    try:
        user = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: not valid JSON; {what}: {exc}") from exc
    if not isinstance(user, dict) or not all(entry_ok(k, v) for k, v in user.items()):
        raise BadInputError(f"{path}: {what}")
    keys.update(user)
    return keys


def write_key_map(keys: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(keys, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path
