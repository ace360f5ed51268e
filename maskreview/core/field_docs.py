"""Descriptions, in the dataset schema, of every field and label attribute maskreview writes, so
the FiftyOne App's sidebar (and ``get_field_schema``) explains them.

:func:`describe` sets ``field.description`` (FiftyOne's public field API) on those that have
none; a description someone wrote is kept. Idempotent, cheap once done.
"""

from __future__ import annotations

from maskreview.core.fields import ORIGINAL_SUFFIX
from maskreview.core.fields import ORIGINAL_INDEX, ORIGINAL_OF, REVIEW_ADDED, REV_BY_FIELD, REV_FIELD, SOURCE_FIELD, SOURCE_LABEL_ID, SOURCE_MODEL, SOURCE_RUN_KEY, SOURCE_SCORE, SOURCE_WEIGHTS, run_field
from maskreview.core.store import fiftyone

LABEL_ATTRIBUTES = {
    REVIEW_ADDED: "created during review in maskreview (added or promoted)",
    SOURCE_FIELD: "promoted from this label field (maskreview)",
    SOURCE_LABEL_ID: "id of the label it was promoted from (maskreview)",
    SOURCE_SCORE: "confidence of the label it was promoted from (maskreview)",
    SOURCE_MODEL: "model that predicted the label it was promoted from (maskreview)",
    SOURCE_WEIGHTS: "SHA-256 of that model's weights (maskreview)",
    SOURCE_RUN_KEY: "model run that predicted the label it was promoted from (maskreview)",
    ORIGINAL_OF: "id of the live label this pre-review copy belongs to (maskreview)",
    ORIGINAL_INDEX: "position of the label in its field before review (maskreview)",
}
SAMPLE_FIELDS = {
    REV_FIELD: "maskreview edit revision: incremented by every edit (conflict detection)",
    REV_BY_FIELD: "maskreview edit session that wrote the current revision",
}
EVAL_LABEL_SUFFIXES = {
    "": "outcome in evaluation '{key}': tp, fp, fn or ignored (maskreview, COCO matching)",
    "_id": "id of the label matched in evaluation '{key}' ('' when none)",
    "_iou": "IoU with the matched label in evaluation '{key}'",
    "_biou": "boundary IoU with the matched label in evaluation '{key}'",
}
EVAL_SAMPLE_SUFFIXES = {"_tp": "true positives", "_fp": "false positives", "_fn": "false negatives"}


def descriptions(dataset) -> dict[str, str]:
    """Every maskreview path of ``dataset``'s schema, with what it holds."""

    fo = fiftyone()
    schema = dataset.get_field_schema(flat=True)
    detection_fields = [p for p, f in dataset.get_field_schema(embedded_doc_type=fo.Detections).items()]
    out = {p: d for p, d in SAMPLE_FIELDS.items() if p in schema}
    for field in detection_fields:
        if field.endswith(ORIGINAL_SUFFIX):
            out[field] = f"pre-review copies of the '{field[:-len(ORIGINAL_SUFFIX)]}' labels maskreview edited or deleted"
        if run_field(field) in schema:
            out[run_field(field)] = f"model run that predicted this sample's '{field}' (see dataset.info['maskreview_runs'])"
        for name, text in LABEL_ATTRIBUTES.items():
            if f"{field}.detections.{name}" in schema:
                out[f"{field}.detections.{name}"] = text
    for key in dataset.list_evaluations():
        config = dataset.get_evaluation_info(key).config
        for suffix, what in EVAL_SAMPLE_SUFFIXES.items():
            if f"{key}{suffix}" in schema:
                out[f"{key}{suffix}"] = f"{what} in evaluation '{key}' ({config.pred_field} vs {config.gt_field})"
        for field in (config.gt_field, config.pred_field):
            for suffix, text in EVAL_LABEL_SUFFIXES.items():
                if f"{field}.detections.{key}{suffix}" in schema:
                    out[f"{field}.detections.{key}{suffix}"] = text.format(key=key)
    return out


def describe(dataset) -> list[str]:
    """Set the descriptions of maskreview's fields that have none; returns the paths set."""
    done = []
    for path, text in descriptions(dataset).items():
        fld = dataset.get_field(path)
        if fld is not None and not fld.description:
            fld.description = text
            fld.save()
            done.append(path)
    return done
