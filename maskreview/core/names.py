"""Names the app writes into a dataset (eval keys, run keys, output fields), checked before any write.

No command writes into what it does not own: a name is refused (:class:`BadInputError`) when it
is one of FiftyOne's own names (a label's ``label``, ``mask``, ``tags``, ``bounding_box``...; a
sample's ``filepath``, ``metadata``...), or when a field or label attribute of that name already
holds something that is not the run's own.

- :func:`check_eval_key` for ``eval --eval-key`` and the window's evaluation;
- :func:`check_field_name` for a sample field a command writes (``infer --field``, run keys).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from maskreview.core.errors import BadInputError
from maskreview.core.store import fiftyone, reader
from maskreview.core.fields import REV_BY_FIELD, REV_FIELD

SAMPLE_SUFFIXES = ("_tp", "_fp", "_fn")  # per sample, under an eval key
LABEL_SUFFIXES = ("", "_id", "_iou", "_biou")  # per label, on both fields


@cache
def reserved_label_attributes() -> frozenset[str]:
    """A Detection's declared fields and every public name of the class (``copy``, ``has_mask``...)."""

    fo = fiftyone()
    names = set(fo.Detection().field_names) | set(fo.Detections().field_names) | {"_cls"}
    names |= {n for n in dir(fo.Detection) if not n.startswith("_")}
    return frozenset(names | {"pk", "_id"})


@cache
def reserved_sample_fields() -> frozenset[str]:
    """A sample's default fields and every public name of ``fo.Sample`` (``filename``, ``dataset``...)."""

    fo = fiftyone()
    from fiftyone.core.sample import get_default_sample_fields

    names = set(get_default_sample_fields(include_private=True))
    names |= {n for n in dir(fo.Sample) if not n.startswith("_")}
    return frozenset(names | {"pk", "_id", "frames", "groups", "group", "media_type"} | maskreview_sample_fields())


def maskreview_sample_fields() -> frozenset[str]:
    """The fields maskreview keeps on every sample it writes: the edit revision (``core.writeback``)."""

    return frozenset({REV_FIELD, REV_BY_FIELD})


def _whose(name: str) -> str:
    return ("maskreview's own sample field (its edit revision)" if name in maskreview_sample_fields()
            else "a sample's own field in FiftyOne")


def check_identifier(name, what: str) -> None:
    """Letters, digits and underscores, starting with a letter (FiftyOne's private names start with ``_``)."""
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii() or name.startswith("_"):
        raise BadInputError(f"{name!r}: a {what} is letters, digits and underscores, starting with a letter")


def eval_paths(eval_key: str, gt_field: str, pred_field: str) -> list[str]:
    """Every path an evaluation under ``eval_key`` writes (see ``evaluation.runs``)."""
    paths = [f"{eval_key}{s}" for s in SAMPLE_SUFFIXES]
    for field in dict.fromkeys((gt_field, pred_field)):
        paths += [f"{field}.detections.{eval_key}{s}" for s in LABEL_SUFFIXES]
    return paths


def _owned_eval_paths(dataset, eval_key: str) -> set[str]:
    """The paths a stored evaluation under ``eval_key`` wrote: a re-run may replace them."""
    from fiftyone.utils.eval.coco import COCOEvaluationConfig

    if eval_key not in dataset.list_evaluations():
        return set()
    try:
        config = dataset.get_evaluation_info(eval_key).config
    except Exception:  # an unreadable old run owns nothing it could prove
        return set()
    if not isinstance(config, COCOEvaluationConfig):  # FiftyOne would refuse to replace it, with a traceback
        raise BadInputError(f"eval key {eval_key!r} holds another kind of evaluation ({type(config).__name__}); "
                            "choose another key")
    return set(eval_paths(eval_key, config.gt_field, config.pred_field))


def _type_name(field) -> str:
    doc = getattr(field, "document_type", None)
    return doc.__name__ if doc is not None else type(field).__name__


def _first_holding(dataset, paths: list[str]) -> str | None:
    """The first of ``paths`` that some sample holds a value at, declared in the schema or not
    (one scan when none is held)."""

    if not paths or not reader.exists(dataset, _holding_query(dataset, paths)):
        return None
    return next((p for p in paths if reader.exists(dataset, {p: {"$exists": True}})), paths[0])


def _holding_query(dataset, paths: list[str]) -> dict:
    """A query for the samples holding a value at any of ``paths``. Attributes of the items of a
    list field of the schema (``<field>.detections.<name>``) are looked for in one ``$elemMatch``
    per list, each item looked at once for all its names: a dotted ``$exists`` path per name
    walks the list once per name (an eval key's 11 paths over 1,000 demo samples: mongod 18-45 ms
    against 4 ms). Items are documents in a list field, so the same samples match."""
    fo = fiftyone()
    schema = dataset.get_field_schema(flat=True)
    per_list: dict[str, list] = {}
    clauses = []
    for path in paths:
        head, _, name = path.rpartition(".")
        if head and isinstance(schema.get(head), fo.ListField) and isinstance(schema[head].field, fo.EmbeddedDocumentField):
            per_list.setdefault(head, []).append({name: {"$exists": True}})
        else:
            clauses.append({path: {"$exists": True}})
    clauses += [{head: {"$elemMatch": {"$or": names}}} for head, names in per_list.items()]
    return {"$or": clauses}


def check_eval_key(dataset, eval_key, gt_field: str, pred_field: str, leftovers: Iterable[str] = ()) -> None:
    """Refuse an eval key that would write over a reserved name, a field or label attribute that
    is not this key's own from an earlier run (its ``_tp/_fp/_fn``, ``<key>``, ``_id``, ``_iou``,
    ``_biou``), or a sample field named like the key. ``leftovers``: paths known as the key's own
    although it has no run (left when FiftyOne deleted it, ``evaluation.runs``)."""
    check_identifier(eval_key, "eval key")
    label_names = [f"{eval_key}{s}" for s in LABEL_SUFFIXES]
    sample_names = [f"{eval_key}{s}" for s in SAMPLE_SUFFIXES]
    for name in label_names:
        if name in reserved_label_attributes():
            raise BadInputError(f"eval key {eval_key!r}: '{name}' is a label's own attribute in FiftyOne; "
                                "choose another key")
    for name in (eval_key, *sample_names):
        if name in reserved_sample_fields():
            raise BadInputError(f"eval key {eval_key!r}: '{name}' is {_whose(name)}; choose another key")
    owned = _owned_eval_paths(dataset, eval_key) | set(leftovers)
    schema = dataset.get_field_schema(flat=True)
    if eval_key in schema:
        raise BadInputError(f"eval key {eval_key!r}: the dataset has a field {eval_key!r} "
                            f"({_type_name(schema[eval_key])}); choose another key")
    new = [p for p in eval_paths(eval_key, gt_field, pred_field) if p not in owned]
    for path in new:
        if path in schema:
            raise BadInputError(f"eval key {eval_key!r} would overwrite {path!r} ({_type_name(schema[path])}), "
                                "which is not this key's own; choose another key")
    held = _first_holding(dataset, new)
    if held is not None:
        raise BadInputError(f"eval key {eval_key!r} would overwrite {held!r}, which some samples hold and "
                            "is not this key's own; choose another key")


def check_field_name(dataset, name, kind=None, what: str = "field") -> None:
    """Refuse a sample field name that is reserved, or that exists as a field of another kind.

    ``kind``: the embedded document type the command writes (``fo.Detections``), or a field
    class; an existing field of the same kind is left to the caller (resume, ``--overwrite``).
    """
    check_identifier(name, what)
    if name in reserved_sample_fields():
        raise BadInputError(f"{what} {name!r} is {_whose(name)}; choose another name")
    field = dataset.get_field_schema().get(name)
    if field is None:
        if _first_holding(dataset, [name]) is not None:
            raise BadInputError(f"{what} {name!r}: some samples already hold a value there; choose another name")
        return
    if kind is None:
        raise BadInputError(f"{what} {name!r}: the dataset already has that field ({_type_name(field)})")
    doc = getattr(field, "document_type", None)
    same = doc is kind if doc is not None else isinstance(kind, type) and isinstance(field, kind)
    if not same:
        raise BadInputError(f"{what} {name!r}: the dataset already has that field, holding {_type_name(field)}, "
                            f"not {getattr(kind, '__name__', kind)}; choose another name")
