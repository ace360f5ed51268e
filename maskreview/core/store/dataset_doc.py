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
    return not _same_time(getattr(doc, MODIFIED_FIELD, None), (stored or {}).get(MODIFIED_FIELD))


def _same_time(mine, theirs) -> bool:
    """This copy's modification time and the stored one agree (MongoDB keeps milliseconds)."""
    if mine is None or theirs is None:
        return False
    return mine.replace(microsecond=mine.microsecond // 1000 * 1000, tzinfo=None) == theirs.replace(tzinfo=None)


_VOLATILE = ("info", MODIFIED_FIELD, "last_loaded_at")  # what the model worker's run records change
_FIELD_VOLATILE = ("info", "description")  # a field's own copy of its run record


def stored_shape(dataset, as_loaded: bool = False) -> dict | None:
    """The stored dataset document without its run records (``info``, the fields' infos and
    descriptions) and times: what :func:`refresh` compares to tell a run record's update (cheap
    to take in) from any other change (a reload). None when it cannot be read, or with
    ``as_loaded`` when the stored document is not the one this copy holds (changed since)."""
    doc = dataset._doc
    try:
        stored = type(doc)._get_collection().find_one({"_id": doc.id})
    except Exception:  # noqa: BLE001 - the reload then says what is wrong
        return None
    if stored is None:
        return None
    if as_loaded and not _same_time(getattr(doc, MODIFIED_FIELD, None), stored.get(MODIFIED_FIELD)):
        return None
    shape = {k: v for k, v in stored.items() if k not in _VOLATILE}
    for key in ("sample_fields", "frame_fields"):
        if isinstance(shape.get(key), list):
            shape[key] = [{k: v for k, v in f.items() if k not in _FIELD_VOLATILE} if isinstance(f, dict) else f
                          for f in shape[key]]
    return shape


def refresh(dataset, shape: dict | None) -> dict | None:
    """Bring this copy of the dataset document up to date after another process changed the
    stored one; returns the shape to pass next time. When the stored document differs from
    ``shape`` (the one last seen, :func:`stored_shape`) only in its run records, only ``info``
    and the modification time are read into this copy (~1 ms, the model worker's run records);
    otherwise ``dataset.reload()`` (~15-30 ms of CPU: FiftyOne rebuilds the document classes and
    writes ``last_loaded_at``). The shape is read before the reload, so that a change landing
    in between makes the next call reload again rather than miss it. The fields' own copies of
    the run records are not read in: this copy never saves them (a save writes only what it
    changed), and the window reads the records from ``info``."""
    now = stored_shape(dataset)
    if now is not None and shape is not None and now == shape:
        dataset._doc.reload("info", MODIFIED_FIELD)
        return now
    dataset.reload()
    return now
