"""What a prediction field holds for some samples, saved and written back: a model run's undo.

A model run in the GUI is one undo entry: take :func:`snapshot_field` of the samples it will
write before the run and after it; undo is :func:`restore_field` of the first, redo of the
second. A snapshot holds the raw documents of ``<field>`` and ``<field>_run`` (masks included),
whether the field existed, and the field's provenance record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from maskreview.core import fields
from maskreview.core.fields import MODIFIED_FIELD
from maskreview.core.model.provenance import RUNS_INFO_KEY, provenance, record_run
from maskreview.core.store import fiftyone, reader
from maskreview.core.store.ids import as_oid, new_id
from maskreview.core.store.writer import SampleWriter, Update, declare_revision_fields, now_ms, revised


@dataclass
class FieldSnapshot:
    field: str
    values: dict[str, tuple[object, object]]  # sample id -> (field value, run key), raw documents
    existed: bool  # whether the dataset had the field
    record: dict | None  # its provenance record
    sample_ids: list[str] = field(default_factory=list)


def snapshot_field(dataset, field_name: str, sample_ids) -> FieldSnapshot:
    """The raw content of ``field_name`` and ``<field_name>_run`` for ``sample_ids``."""

    ids = list(dict.fromkeys(str(i) for i in sample_ids))
    run_field = fields.run_field(field_name)
    values = {sid: (doc.get(field_name), doc.get(run_field))
              for sid, doc in reader.by_ids(dataset, ids, [field_name, run_field]).items()}
    return FieldSnapshot(field_name, values, field_name in dataset.get_field_schema(),
                         provenance(dataset, field_name), ids)


def restore_field(dataset, snap: FieldSnapshot) -> list[str]:
    """Write ``snap`` back (``last_modified_at`` and a new ``review_rev`` set, as an edit does);
    returns the ids written.

    A snapshot taken before the field existed removes the field again (with its ``_run`` field
    and record) when no sample holds a value after the restore; one taken after re-creates it."""

    fo = fiftyone()
    run_field = fields.run_field(snap.field)
    schema = dataset.get_field_schema()
    if snap.existed and snap.field not in schema:
        dataset.add_sample_field(snap.field, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    if snap.existed and run_field not in schema:
        dataset.add_sample_field(run_field, fo.StringField)
    stamp = now_ms()
    declare_revision_fields(dataset)
    writer = f"model run restored {new_id()}"
    ops = [Update({"_id": as_oid(sid)}, revised({"$set": {snap.field: value, run_field: run_key,
                                                           MODIFIED_FIELD: stamp}}, writer))
           for sid, (value, run_key) in snap.values.items()]
    written = list(snap.values) if ops and snap.field in dataset.get_field_schema() else []
    if written:
        SampleWriter(dataset).write(ops)
    _restore_record(dataset, snap)
    if not snap.existed and snap.field in dataset.get_field_schema() and not reader.exists(
            dataset, {snap.field: {"$ne": None}}):
        for name in (snap.field, run_field):
            if name in dataset.get_field_schema():
                dataset.delete_sample_field(name)
    dataset.reload()
    return written


def _restore_record(dataset, snap: FieldSnapshot) -> None:
    if snap.record is not None:
        if snap.field in dataset.get_field_schema():
            record_run(dataset, snap.field, snap.record)
        return
    dataset.reload()
    runs = dict((dataset.info or {}).get(RUNS_INFO_KEY) or {})
    if runs.pop(snap.field, None) is not None:
        dataset.info[RUNS_INFO_KEY] = runs
        dataset.save()
