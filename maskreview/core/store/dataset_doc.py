"""The dataset's own document (schema, ``info``, the fields' infos), read raw.

A ``Dataset`` object holds a copy of that document; the model worker (another process) changes
the stored one while the window shows its copy (new prediction fields, run records).
"""

from __future__ import annotations

from maskreview.core.fields import MODIFIED_FIELD


def changed_since_loaded(dataset) -> bool:
    """Whether the dataset's own document (schema, ``info``, the fields' infos) was changed in the
    database since this copy was loaded or saved, by another process (the model worker) or copy:
    one projected read of ``last_modified_at``, which FiftyOne moves on each of those saves. A
    ``dataset.reload()`` costs ~15 ms of CPU (it rebuilds the document classes and writes
    ``last_loaded_at``); the window skips it when nothing changed. Any doubt counts as changed."""
    doc = dataset._doc
    try:
        stored = type(doc)._get_collection().find_one({"_id": doc.id}, {MODIFIED_FIELD: 1})
    except Exception:  # noqa: BLE001 - the caller's reload then says what is wrong
        return True
    mine, theirs = getattr(doc, MODIFIED_FIELD, None), (stored or {}).get(MODIFIED_FIELD)
    if mine is None or theirs is None:
        return True
    return mine.replace(microsecond=mine.microsecond // 1000 * 1000, tzinfo=None) != theirs.replace(tzinfo=None)
