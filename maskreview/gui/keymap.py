"""The user's keys: which keys each action has, changed live (File ▸ Settings ▸ Keys).

Where a change is kept: verdict keys in ``verdict_keys.json`` and tag keys in ``tag_keys.json``
(the files core reads, in the user config dir), every other action's keys in ``gui.ini``
(``[shortcuts]``, only those that differ from the declared default).
"""

from __future__ import annotations

from maskreview.core import tagging
from maskreview.core.errors import BadInputError
from maskreview.core.review import verdicts as vd
from maskreview.gui.actions import set_keys, spec_of

GROUP = "shortcuts"


def keys_of(window, name: str) -> tuple[str, ...]:
    action = window.actions_.get(name)
    return tuple(k.toString() for k in action.shortcuts()) if action is not None else ()


def saved_overrides(settings) -> dict[str, tuple[str, ...]]:
    q = settings.q
    q.beginGroup(GROUP)
    try:
        out = {}
        for name in q.childKeys():
            value = q.value(name)
            keys = [value] if isinstance(value, str) else list(value or [])
            out[name] = tuple(k for k in keys if k)
        return out
    finally:
        q.endGroup()


def apply_saved(window) -> None:
    """The keys kept in gui.ini onto the window's actions (at start, after every feature added its own)."""
    for name, keys in saved_overrides(window.settings).items():
        spec, action = spec_of(name), window.actions_.get(name)
        if spec is not None and action is not None and not _kept_in_json(name):
            set_keys(action, spec, keys)


def clash(window, name: str, keys: tuple[str, ...]) -> str | None:
    """The text of another action that already has one of ``keys``, if any."""
    wanted = {k for k in keys if k}
    for other, action in window.actions_.items():
        if other != name and wanted & {k.toString() for k in action.shortcuts()}:
            return action.text().replace("&", "")
    return None


def set_action_keys(window, name: str, keys: tuple[str, ...]) -> None:
    """Give action ``name`` these keys now and keep them (raises BadInputError on a clash)."""
    keys = tuple(k for k in keys if k)
    other = clash(window, name, keys)
    if other is not None:
        raise BadInputError(f"{', '.join(keys)} is already the key of '{other}'")
    spec, action = spec_of(name), window.actions_[name]
    if name.startswith("verdict_"):
        _set_verdict_key(window, name.removeprefix("verdict_"), keys)
    elif name.startswith("tag_"):
        _set_tag_key(window, name.removeprefix("tag_"), keys)
    elif keys == spec.shortcuts:
        window.settings.q.remove(f"{GROUP}/{name}")
    else:
        window.settings.set_value(f"{GROUP}/{name}", list(keys))
    set_keys(action, spec, keys)
    window.settings.sync()


def _kept_in_json(name: str) -> bool:
    return name.startswith(("verdict_", "tag_"))


def _set_verdict_key(window, verdict: str, keys: tuple[str, ...]) -> None:
    if len(keys) != 1:
        raise BadInputError(f"the '{vd.VERDICT_TEXT[verdict]}' verdict takes one key")
    saved = vd.load_verdict_keys()
    saved[verdict] = keys[0]
    vd.save_verdict_keys(saved)
    queue = getattr(getattr(window, "features", None), "review_queue", None)
    if queue is not None:
        queue.keys[verdict] = keys[0]
        if verdict == "skip" and "queue_previous" in window.actions_:
            set_keys(window.actions_["queue_previous"], spec_of("queue_previous"), (f"Shift+{keys[0]}",))


def _set_tag_key(window, tag: str, keys: tuple[str, ...]) -> None:
    if len(keys) > 1:
        raise BadInputError(f"tag '{tag}' takes one key")
    path = tagging.tag_keys_path()
    keys_now = {k: t for k, t in tagging.load_tag_keys(path).items() if t != tag}
    if keys:
        keys_now[keys[0]] = tag
    off = {k: None for k in tagging.DEFAULT_TAG_KEYS if k not in keys_now}  # a default key switched off stays off
    tagging.save_tag_keys({**off, **keys_now}, path)
    window.tag_keys = tagging.load_tag_keys(path)
