"""Results stored the FiftyOne way, under an eval key, so FiftyOne's App shows them.

Per sample: ``<key>_tp``, ``<key>_fp``, ``<key>_fn`` (ints). Per label, on both fields:
``<key>`` (``tp``/``fp``/``fn``/``ignored``), ``<key>_id`` (the matched label's id, ``""`` when
none), ``<key>_iou``, and ``<key>_biou`` (boundary IoU, segm). The run is registered with
FiftyOne's own COCO evaluation config and results classes, so ``dataset.list_evaluations()``,
``load_evaluation_results(key)`` (``mAP()``, ``print_report()``, PR curves) and the App's
evaluation panel work as for ``evaluate_detections(method="coco", compute_mAP=True)``.
All writes are bulk ``set_values`` calls.
"""

from __future__ import annotations

import numpy as np

from maskreview.core.errors import BadInputError
from maskreview.core.evaluation.results import EvalResults, compute
from maskreview.core.gcpause import gc_paused
from maskreview.core.progress import Progress


def _split(table_img: np.ndarray, values, n_samples: int) -> list[list]:
    bounds = np.searchsorted(table_img, np.arange(n_samples + 1))
    values = list(values)
    return [values[bounds[i]:bounds[i + 1]] for i in range(n_samples)]


def _label_values(results: EvalResults, table, other) -> dict[str, list]:
    match_ids = [other.label_id[m] if m >= 0 else "" for m in table.match.tolist()]
    iou = [None if np.isnan(v) else float(v) for v in table.iou.tolist()]
    biou = [None if np.isnan(v) else float(v) for v in table.biou.tolist()]
    return {"": table.outcome.tolist(), "_id": match_ids, "_iou": iou, "_biou": biou}


def _check_key(eval_key: str) -> None:
    if not eval_key or not eval_key.replace("_", "").isalnum() or eval_key[0].isdigit():
        raise BadInputError(f"{eval_key!r}: an eval key is letters, digits and underscores, not starting with a digit")


def _declare_fields(dataset, results: EvalResults, eval_key: str) -> None:
    import fiftyone.core.fields as fof

    schema = {f"{eval_key}_{name}": fof.IntField() for name in ("tp", "fp", "fn")}
    for field in (results.gt_field, results.pred_field):
        prefix = f"{field}.detections.{eval_key}"
        schema.update({prefix: fof.StringField(), f"{prefix}_id": fof.StringField(),
                       f"{prefix}_iou": fof.FloatField(), f"{prefix}_biou": fof.FloatField()})
    existing = dataset.get_field_schema(flat=True)
    schema = {path: f for path, f in schema.items() if path not in existing}
    if schema:  # one schema merge (one reload) instead of FiftyOne's register_samples, which reloads per field
        dataset._merge_sample_field_schema(schema)


def _write_values(dataset, results: EvalResults, eval_key: str) -> None:
    """One update per sample with all its values (FiftyOne's set_values issues one per label).

    Each update is guarded by the sample's label ids, so labels edited since they were read are
    never mislabelled: the write then fails with a clear message instead.
    """
    from datetime import datetime

    from bson import ObjectId
    from fiftyone.core.odm.database import bulk_write
    from fiftyone.core.sample import Sample
    from pymongo import UpdateOne

    from maskreview.core.errors import MaskreviewError

    n = len(results.sample_ids)
    counts = {name: c.tolist() for name, c in results.per_sample.items()}
    per_field = []
    for field, table, other, oids in ((results.gt_field, results.gt, results.pred, results.label_oids[0]),
                                      (results.pred_field, results.pred, results.gt, results.label_oids[1])):
        values = _label_values(results, table, other)
        most = int(np.bincount(table.img, minlength=1).max()) if len(table) else 0
        # every path spelled once (label j of a sample), zipped with each sample's values below
        keys = [([f"{field}.detections.{j}.{eval_key}{suffix}" for j in range(most)], _split(table.img, column, n))
                for suffix, column in values.items()]
        oids = list(oids) if len(oids) == len(table) else [ObjectId(x) for x in table.label_id]
        id_paths = [f"{field}.detections.{j}._id" for j in range(most)]
        per_field.append((f"{field}.detections", _split(table.img, oids, n), keys, id_paths))
    now = datetime.utcnow()
    ops = []
    for i, sid in enumerate(results.sample_ids):
        update = {f"{eval_key}_{name}": counts[name][i] for name in ("tp", "fp", "fn")}
        update["last_modified_at"] = now
        query = {"_id": ObjectId(sid)}
        for path, label_ids, keys, id_paths in per_field:
            if label_ids[i]:
                query[path] = {"$size": len(label_ids[i])}
                query.update(zip(id_paths, label_ids[i]))
                for names, column in keys:
                    update.update(zip(names, column[i]))
        ops.append(UpdateOne(query, {"$set": update}))
    matched = sum(r.matched_count for r in bulk_write(ops, dataset._sample_collection))
    Sample._reload_docs(dataset._sample_collection_name, sample_ids=results.sample_ids)
    if matched != len(ops):
        raise MaskreviewError(f"{len(ops) - matched} samples changed while being evaluated; evaluate again")


def store(view, results: EvalResults, eval_key: str = "eval") -> None:
    """Write ``results`` into the view's samples and labels and register the run."""
    from fiftyone.utils.eval.coco import COCODetectionResults, COCOEvaluationConfig

    _check_key(eval_key)
    dataset = view._dataset
    cleanup = True
    if eval_key in dataset.list_evaluations():
        old = dataset.get_evaluation_info(eval_key).config
        whole = view.view() == dataset.view() if hasattr(view, "view") else False
        if whole and (old.gt_field, old.pred_field) == (results.gt_field, results.pred_field):
            cleanup = False  # every stored value is overwritten below: skip FiftyOne's slow field deletion
        else:
            dataset.delete_evaluation(eval_key)
    config = COCOEvaluationConfig(results.pred_field, results.gt_field, iou=results.iou_thresh, classwise=True,
                                  use_masks=results.iou_type == "segm", compute_mAP=True,
                                  iou_threshs=[float(t) for t in results.iou_thrs], max_preds=100)
    method = config.build()
    method.register_run(view, eval_key, overwrite=True, cleanup=cleanup)
    _declare_fields(dataset, results, eval_key)
    _write_values(dataset, results, eval_key)
    fo_results = COCODetectionResults(
        view, config, eval_key, _matches(results), results.precision, results.rec_thrs, results.iou_thrs,
        results.classes, recall_sweep=results.recall, thresholds=results.pr_scores, backend=method)
    _save_run_results(method, view, eval_key, fo_results)
    method.add_fields_to_sidebar_group(view, eval_key, omit_fields=(results.gt_field, results.pred_field))
    results.eval_key = eval_key


def _save_run_results(method, view, eval_key: str, fo_results) -> None:
    """FiftyOne's ``save_run_results``, the JSON written by the C encoder: the results document
    holds plain lists, numbers and strings, which ``json.dumps`` writes as FiftyOne's
    ``json_util.dumps`` does (its ``default`` hook takes any BSON value; a NaN is written ``NaN``,
    which FiftyOne's ``json_util.loads`` reads back), without json_util's pure-Python walk over
    every value (about half of the store time, measured)."""
    import json

    from bson import json_util

    run_doc = method._get_run_doc(view, eval_key)
    if run_doc.results:
        run_doc.results.delete()  # GridFS keeps the old file otherwise
    run_doc.results.put(json.dumps(fo_results.serialize(), default=json_util.default).encode(),
                        content_type="application/json")
    run_doc.results_meta = dict(fo_results.get_meta() or {})
    getattr(view._root_dataset, method._results_cache_field())[eval_key] = fo_results
    run_doc.save()


def _matches(results: EvalResults) -> list[tuple]:
    """FiftyOne's ``(gt_label, pred_label, iou, confidence, gt_id, pred_id)`` list."""
    names = results.classes
    gt, pred = results.gt, results.pred
    out = []
    for d in range(len(pred)):
        o = pred.outcome[d]
        if o == "tp":
            g = pred.match[d]
            out.append((names[gt.cls[g]], names[pred.cls[d]], float(pred.iou[d]), float(pred.score[d]),
                        gt.label_id[g], pred.label_id[d]))
        elif o == "fp":
            out.append((None, names[pred.cls[d]], None, float(pred.score[d]), None, pred.label_id[d]))
    for g in np.flatnonzero(gt.outcome == "fn"):
        out.append((names[gt.cls[g]], None, None, None, gt.label_id[g], None))
    return out


def evaluate_and_store(view, gt_field: str = "ground_truth", pred_field: str = "predictions",
                       iou_type: str = "segm", eval_key: str | None = "eval", iou_thresh: float = 0.5,
                       boundary: bool = True, occlusion: bool = True,
                       progress: Progress | None = None) -> EvalResults:
    """Evaluate (see :func:`results.compute`) and, when ``eval_key`` is given, store the results."""
    if eval_key is not None:
        _check_key(eval_key)
    with gc_paused():
        results = compute(view, gt_field, pred_field, iou_type, iou_thresh, boundary, occlusion, progress)
        if eval_key is not None:
            store(view, results, eval_key)
    return results
