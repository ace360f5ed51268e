"""Per-label verdicts on review-queue entries, as ordinary edit ops, and label review progress.

One key per verdict (defaults in :data:`DEFAULT_VERDICT_KEYS`; the user's overrides in
``<user config dir>/verdict_keys.json``, ``{"accept": "Y", ...}``). What each verdict does to
the entry's subject label (:class:`~maskreview.core.review.queue.QueueEntry`), as ops that the
edit session journals and that undo reverses, all visible from FiftyOne (label tags, labels):

- ``accept``: tag the label ``reviewed``. On a missing-label entry (the subject is the
  prediction): promote it to the ground truth (the label was missing) and tag it ``reviewed``.
- ``reject``: a ground truth is deleted; a prediction is tagged ``fp`` and ``reviewed``.
- ``fix_class``: relabel to the class given (the model's, by default) and tag ``reviewed``.
- ``fix_boundary``: tag ``reviewed``; the GUI opens the brush on the label for the fix.
- ``skip``: nothing.

A label counts as reviewed when it carries the ``reviewed`` label tag (deleted labels leave the
count). :func:`label_progress` counts them over a view.
"""

from __future__ import annotations

from pathlib import Path

from maskreview.core.editing.ops import DeleteLabels, LabelRef, LabelTags, Op, Promote, Relabel
from maskreview.core.errors import BadInputError
from maskreview.core.fields import GT_FIELD
from maskreview.core.keymaps import read_key_map, write_key_map
from maskreview.core.review.queue import QueueEntry
from maskreview.core.tagging import REVIEWED
from maskreview.core.store import user_config_dir

VERDICTS = ("accept", "reject", "fix_class", "fix_boundary", "skip")
DEFAULT_VERDICT_KEYS: dict[str, str] = {"accept": "Y", "reject": "X", "fix_class": "K", "fix_boundary": "O",
                                        "skip": "J"}
VERDICT_TEXT = {"accept": "accept", "reject": "reject", "fix_class": "fix class", "fix_boundary": "fix boundary",
                "skip": "skip"}
FALSE_POSITIVE = "fp"


def verdict_keys_path() -> Path:

    return user_config_dir() / "verdict_keys.json"


def load_verdict_keys(path: Path | None = None) -> dict[str, str]:
    """Defaults updated with the user's file; refused (one line) when it is not a verdict -> key map."""
    path = path or verdict_keys_path()
    keys = read_key_map(path, DEFAULT_VERDICT_KEYS, lambda k, v: k in VERDICTS and isinstance(v, str) and bool(v),
                        f"a verdict key map is a JSON object of {', '.join(VERDICTS)} -> key")
    if len(set(keys.values())) != len(keys):
        raise BadInputError(f"{path}: two verdicts share a key ({keys})")
    return keys


def save_verdict_keys(keys: dict[str, str], path: Path | None = None) -> Path:
    return write_key_map(keys, path or verdict_keys_path())


def verdict_ops(entry: QueueEntry, verdict: str, label: str | None = None,
                gt_field: str = GT_FIELD) -> list[Op]:
    """The ops a verdict makes (applied together: one undo step). ``label``: the new class of
    ``fix_class`` (default: the model's); ``gt_field``: where an accepted missing label goes."""
    if verdict not in VERDICTS:
        raise BadInputError(f"unknown verdict {verdict!r}; one of {', '.join(VERDICTS)}")
    ref = LabelRef(entry.sample_id, entry.field, entry.label_id)
    reviewed = LabelTags((ref,), (REVIEWED,), "add")
    if verdict == "skip":
        return []
    if verdict == "accept":
        if entry.on_prediction:
            promote = Promote(ref, gt_field)
            added = LabelRef(entry.sample_id, gt_field, promote.label_id)
            return [promote, LabelTags((added,), (REVIEWED,), "add"), reviewed]
        return [reviewed]
    if verdict == "reject":
        if entry.on_prediction:
            return [LabelTags((ref,), (FALSE_POSITIVE, REVIEWED), "add")]
        return [DeleteLabels((ref,))]
    if verdict == "fix_class":
        new = label or entry.suggested_label
        if not new:
            raise BadInputError("fix class needs the new class")
        return [Relabel((ref,), new), reviewed]
    return [reviewed]  # fix_boundary: the brush does the fix


def label_progress(view, fields: list[str]) -> tuple[int, int]:
    """``(labels tagged reviewed, labels)`` over ``fields`` of a dataset or view."""
    total = sum(int(view.count(f"{f}.detections")) for f in fields)
    counts = view.count_label_tags(label_fields=fields) if total else {}
    return int(counts.get(REVIEWED, 0)), total
