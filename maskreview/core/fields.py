"""The names maskreview reads and writes in a dataset, in one place.

Field names (ground truth, predictions, the ``_original`` snapshots), the sample fields that
count edits (``review_rev``), the label attributes an edit writes, and the keys maskreview keeps
in ``dataset.info``. Code uses these constants, never the string literals, so a rename is one
line. :mod:`maskreview.core.names` checks names a *user* picks (an eval key, an output field).
"""

from __future__ import annotations

GT_FIELD = "ground_truth"  # the default ground-truth label field
PRED_FIELD = "predictions"  # the default prediction label field
DEFAULT_EVAL_KEY = "eval"  # the default key evaluation results are stored under

ORIGINAL_SUFFIX = "_original"  # <field>_original holds the pre-review copy of each edited label


def original_field(field_name: str) -> str:
    """The snapshot field of a label field (``ground_truth`` -> ``ground_truth_original``)."""
    return field_name + ORIGINAL_SUFFIX


def live_field(field_name: str) -> str:
    """The label field a snapshot field belongs to (the name itself if it is not a snapshot field)."""
    return field_name[: -len(ORIGINAL_SUFFIX)] if field_name.endswith(ORIGINAL_SUFFIX) else field_name


# Sample fields every writer of labels keeps (conflict detection, core/editing/session.py).
REV_FIELD = "review_rev"  # a counter each edit increments
REV_BY_FIELD = "review_rev_by"  # the session or run that wrote that revision
MODIFIED_FIELD = "last_modified_at"  # FiftyOne's own; every writer sets it

# Label attributes that edits write.
REVIEW_ADDED = "review_added"  # created during review (added or promoted)
ORIGINAL_OF = "original_of"  # a snapshot's link to its live label's id
ORIGINAL_INDEX = "original_index"  # the live label's position before review
SOURCE_FIELD, SOURCE_LABEL_ID, SOURCE_SCORE = "source_field", "source_label_id", "source_score"  # a promoted label's prediction
SOURCE_MODEL, SOURCE_WEIGHTS, SOURCE_RUN_KEY = "source_model", "source_weights_sha256", "source_run_key"

# The same, by FiftyOne field type, so they can be declared in the dataset schema (the FiftyOne
# App and ``get_field_schema`` then show them).
EDIT_ATTRIBUTES = {
    REVIEW_ADDED: "BooleanField",
    SOURCE_FIELD: "StringField", SOURCE_LABEL_ID: "StringField", SOURCE_SCORE: "FloatField",
    SOURCE_MODEL: "StringField", SOURCE_WEIGHTS: "StringField", SOURCE_RUN_KEY: "StringField",
    ORIGINAL_OF: "StringField", ORIGINAL_INDEX: "IntField",
}

# Keys of dataset.info
RUNS_INFO_KEY = "maskreview_runs"  # {field: the model run that wrote it} (core/model/provenance.py)
RUN_KEY = "run_key"  # a run record's unique key, also kept per sample in <field>_run
FIELD_RUN_INFO_KEY = "maskreview_run"  # a prediction field's own info: the record of the run that wrote it


def run_field(field_name: str) -> str:
    """The sample field holding the run key of the model run that predicted ``field_name``."""
    return field_name + "_run"
