"""Review tags: the configurable key map, tag ops for a key press, and review progress.

The key map is plain data (``{"1": "fp", ...}``) with defaults here and the user's overrides in
``<user config dir>/tag_keys.json``. A key press tags the selected labels (label tags) when
there are any, else the current or selected samples (sample tags); pressing it again removes
the tag (toggle). Tags are FiftyOne's own sample and label tags.
"""

from __future__ import annotations

from pathlib import Path

from maskreview.core.editing.ops import LabelRef, LabelTags, Op, SampleTags
from maskreview.core.errors import BadInputError
from maskreview.core.keymaps import read_key_map, write_key_map
from maskreview.core.store import user_config_dir

REVIEWED = "reviewed"
DEFAULT_TAG_KEYS: dict[str, str] = {"1": "fp", "2": "missed", "3": "bad-boundary", "4": "wrong-class", "r": REVIEWED}


def config_dir() -> Path:

    return user_config_dir()


def tag_keys_path() -> Path:
    return config_dir() / "tag_keys.json"


def load_tag_keys(path: Path | None = None) -> dict[str, str]:
    """Defaults updated with the user's file (a key mapped to ``null`` is switched off)."""
    keys = read_key_map(path or tag_keys_path(), DEFAULT_TAG_KEYS,
                        lambda k, v: isinstance(k, str) and (v is None or isinstance(v, str)),
                        "a key map is a JSON object of key -> tag name")
    return {k: v for k, v in keys.items() if v}


def save_tag_keys(keys: dict[str, str], path: Path | None = None) -> Path:
    return write_key_map(keys, path or tag_keys_path())


def tag_op(tag: str, sample_ids: list[str], labels: list[LabelRef] | None = None, mode: str = "toggle") -> Op:
    """The op for a tag key: label tags on the selected labels, else sample tags."""
    if labels:
        return LabelTags(tuple(labels), (tag,), mode)
    if not sample_ids:
        raise BadInputError("nothing selected to tag")
    return SampleTags(tuple(sample_ids), (tag,), mode)


def op_for_key(key: str, sample_ids: list[str], labels: list[LabelRef] | None = None,
               keys: dict[str, str] | None = None) -> Op | None:
    tag = (keys if keys is not None else load_tag_keys()).get(key)
    return tag_op(tag, sample_ids, labels) if tag else None


def review_progress(view, tag: str = REVIEWED) -> tuple[int, int]:
    """``(reviewed, total)`` samples of a dataset or view."""
    return view.match_tags(tag).count(), view.count()
