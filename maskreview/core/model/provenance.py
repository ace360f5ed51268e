"""Which model wrote each prediction field, and which field a model writes (one field per model).

Every field that :func:`maskreview.core.model.runs.run_inference` writes has a record in
``dataset.info["maskreview_runs"][field]`` (model name, config and its SHA-256, weights and
their SHA-256, classes, thresholds, device, run times, maskreview version), mirrored into the
field's own metadata (``dataset.get_field(field).info`` and ``.description``), so the FiftyOne
SDK and App show it too.

Two runs are *the same model* when their config and weights checksums, classes and thresholds
agree (the model's name, the weights' path and the device do not count). A field holds one
model's output: a run of another model into it is refused with :class:`FieldTakenError`, which
names a free field; :func:`propose_field` picks the field a model should write.
"""

from __future__ import annotations

import re

from maskreview.core.errors import BadInputError
from maskreview.core.fields import (  # noqa: F401 (RUNS_INFO_KEY re-exported)
    FIELD_RUN_INFO_KEY, PRED_FIELD, RUN_KEY, RUNS_INFO_KEY, original_field)
from maskreview.core.store import fiftyone, reader
from maskreview.core.store.metadata_lock import dataset_metadata_lock

DEFAULT_FIELD = PRED_FIELD
# what makes two runs the same model (records written before config_sha256 existed lack it)
IDENTITY_KEYS = ("config_sha256", "resolved_config_sha256", "weights_sha256", "classes", "score_thresh", "nms_thresh",
                 "max_detections")


class FieldTakenError(BadInputError):
    """The field holds another model's output (or labels no model wrote)."""

    def __init__(self, field: str, free_field: str, holder: dict | None):
        self.field, self.free_field, self.holder = field, free_field, holder
        who = f"the output of another model ({model_label(holder)})" if holder else "labels that no model run wrote"
        super().__init__(f"field {field!r} holds {who}; write this model into its own field, "
                         f"e.g. --field {free_field}")


def _runs(dataset) -> dict:
    return dict((dataset.info or {}).get(RUNS_INFO_KEY) or {})


def provenance(dataset, field: str) -> dict | None:
    """The record of the model that wrote ``field`` (None: no model run wrote it)."""
    record = _runs(dataset).get(field)
    return dict(record) if record else None


def prediction_fields(dataset) -> dict[str, dict]:
    """Every field a model run wrote that still exists, with its record."""
    schema = dataset.get_field_schema()
    return {name: dict(rec) for name, rec in _runs(dataset).items() if name in schema and rec}


def model_label(record: dict | None) -> str:
    """A short human description: ``demo (weights 1a2b3c4d, score >= 0.05)``."""
    if not record:
        return "unknown model"
    sha = (record.get("weights_sha256") or "")[:8]
    parts = [f"weights {sha}"] if sha else []
    if record.get("score_thresh") is not None:
        parts.append(f"score >= {record['score_thresh']:g}")
    return f"{record.get('model') or 'model'}" + (f" ({', '.join(parts)})" if parts else "")


def same_model(a: dict | None, b: dict | None) -> bool:
    """Whether two records (or ``engine.provenance``) describe the same model and settings."""
    if not a or not b:
        return False
    keys = [k for k in IDENTITY_KEYS if k in a and k in b]
    if "weights_sha256" not in keys:
        return False
    return all(a[k] == b[k] for k in keys)


def _identity(engine_or_record) -> dict:
    return engine_or_record if isinstance(engine_or_record, dict) else engine_or_record.provenance


def field_has_values(dataset, field: str) -> bool:
    """Whether any sample has a value in ``field`` (an existing but empty field is free)."""
    if field not in dataset.get_field_schema():
        return False

    return reader.exists(dataset, {field: {"$ne": None}})


def field_holder(dataset, field: str) -> dict | None:
    """The record of the model whose output ``field`` holds; None when the field is free
    (absent or empty). A field with labels that no model run wrote gives ``{}``."""
    if not field_has_values(dataset, field):
        return None
    return provenance(dataset, field) or {}


def slug(model_name: str) -> str:
    """A field-name fragment from a model name: a folder's base name, a zoo config's file name."""
    base = re.split(r"[\\/]", str(model_name).rstrip("/\\"))[-1] or "model"
    base = re.sub(r"\.(ya?ml|pth|pkl)$", "", base, flags=re.I)
    text = re.sub(r"[^0-9a-zA-Z]+", "_", base).strip("_").lower() or "model"
    return text[:40]


def _free_name(dataset, stem: str) -> str:
    runs = _runs(dataset)
    name, n = stem, 1
    while name in runs or not _is_free(dataset, name):
        n += 1
        name = f"{stem}_{n}"
    return name


def _is_free(dataset, name: str) -> bool:
    """No labels and no review records (``<name>_original``) in ``name``, and room for Detections."""
    fo = fiftyone()
    schema = dataset.get_field_schema()
    if original_field(name) in schema:
        return False
    if name not in schema:
        return True
    return getattr(schema[name], "document_type", None) is fo.Detections and not field_has_values(dataset, name)


def propose_field(dataset, engine_or_record) -> str:
    """The field this model should write: the one already holding its output; else
    ``predictions`` when free; else ``pred_<model>`` (``_2``, ``_3``... when taken)."""
    identity = _identity(engine_or_record)
    runs = _runs(dataset)
    schema = dataset.get_field_schema()
    for name in [DEFAULT_FIELD, *sorted(runs)]:
        if name in schema and same_model(runs.get(name), identity):
            return name
    if _is_free(dataset, DEFAULT_FIELD):
        return DEFAULT_FIELD
    return _free_name(dataset, f"pred_{slug(identity.get('model') or 'model')}")


def check_field_for(dataset, field: str, engine_or_record) -> None:
    """Raise :class:`FieldTakenError` unless ``field`` is free or holds this model's output."""
    holder = field_holder(dataset, field)
    if holder is not None and not same_model(holder, _identity(engine_or_record)):
        raise FieldTakenError(field, propose_field(dataset, engine_or_record), holder or None)


SHARD_TOTALS = ("predicted", "skipped", "failed", "kept_reviewed")


def record_run(dataset, field: str, record: dict, shard=None) -> None:
    """Store a run's record in ``dataset.info`` and in the field's own ``info``/``description``.

    Under the dataset's metadata lock (:mod:`maskreview.core.store.metadata_lock`): concurrent
    workers of one run (``--shard``, distributed ranks) each record theirs without losing the
    others'. With ``shard`` (a :class:`~maskreview.core.model.sharding.Shard`), the record keeps
    each shard's own figures under ``shards`` (merged with the other shards' of the same model)
    and the totals over them at the top."""

    with dataset_metadata_lock(dataset):
        runs = _runs(dataset)
        if shard is not None:
            record = _with_shard(runs.get(field), record, shard)
        runs[field] = record
        dataset.info[RUNS_INFO_KEY] = runs
        _save_record(dataset, field, record)


def _with_shard(existing: dict | None, record: dict, shard) -> dict:
    same_run = existing and existing.get(RUN_KEY) == record.get(RUN_KEY)
    shards = {k: v for k, v in ((existing or {}).get("shards") or {}).items()
              if same_run and k.endswith(f"of{shard.count}")}
    shards[shard.key()] = {k: record[k] for k in ("started", "finished", "cancelled", *SHARD_TOTALS) if k in record}
    out = {**record, "shards": shards}
    for k in SHARD_TOTALS:
        if any(k in s for s in shards.values()):
            out[k] = sum(s.get(k, 0) for s in shards.values())
    return out


def _save_record(dataset, field: str, record: dict) -> None:
    dataset.save()
    fld = dataset.get_field(field)
    if fld is not None:
        fld.info = {FIELD_RUN_INFO_KEY: record}
        fld.description = f"predictions of {model_label(record)}, written by maskreview"
        fld.save()


def forget_run(dataset, field: str) -> None:
    """Drop a run's record (for scratch fields that are deleted afterwards)."""
    runs = _runs(dataset)
    if runs.pop(field, None) is not None:
        dataset.info[RUNS_INFO_KEY] = runs
        dataset.save()
