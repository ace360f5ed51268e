"""A finished evaluation kept on disk, so that reopening a dataset loads it instead of computing it
again (#17.4: at 100,000 samples that was minutes of CPU and GBs, on every open).

A stored evaluation's per-label values in the dataset go stale with every edit, so the window
shows an evaluation computed from the labels as they are. What it computed is kept here, in the
user cache dir, with the **labels' fingerprint** at that moment: the number of samples and the
newest ``last_modified_at`` (every writer of a sample sets it, edits and evaluations alike; an
index answers both). On open, :func:`load` gives the kept results back only while the
fingerprint is the same: any edit, import, deletion or new evaluation since makes it differ, and
the evaluation is computed again (as before). The fingerprint kept is the one the evaluation
took when it read the labels (``EvalResults.fingerprint``; after its own writes of the values,
when it stored them), not the one when keeping runs (later, on a worker): an edit in between
would otherwise be hidden, and the next open would load figures of the labels before it. The file holds what the review uses (the per-label
tables, the summary, precision, the IoU blocks for re-matching at other thresholds, the
geometries); not the decoded masks or COCOeval's objects. A file that cannot be read is ignored.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import replace
from pathlib import Path

from maskreview.core import plain_pickle
from maskreview.core.evaluation.results import labels_fingerprint
from maskreview.core.store import user_cache_dir

FORMAT = 3  # bump when EvalResults changes shape: older files are then ignored


def _path(dataset, eval_key: str) -> Path:
    ident = f"{dataset.name}|{dataset.created_at}|{eval_key}"
    return user_cache_dir() / "evaluations" / f"{hashlib.sha1(ident.encode()).hexdigest()}.pkl"


def fingerprint(dataset) -> tuple:
    """``(samples, newest last_modified_at)``: changes with any write to any sample."""
    return labels_fingerprint(dataset)


def keep(dataset, results) -> Path | None:
    """Write ``results`` (an evaluation of the whole ``dataset`` under ``results.eval_key``, its
    values already stored) with the labels' fingerprint as the evaluation read them. Run it off
    the GUI thread."""
    now = results.fingerprint
    if results.eval_key is None or now is None or len(results.sample_ids) != now[0]:
        return None  # a view's evaluation is not what reopening the dataset shows; or labels changed meanwhile
    slim = replace(results, evaluator=None, evaluation=None, entries=[], cache=None, gt_masks=[], pred_masks=[],
                   sample_versions=[], _blocks=results.blocks)
    path = _path(dataset, results.eval_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump({"format": FORMAT, "fingerprint": now, "results": slim}, f,
                    protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return path


def load(dataset, eval_key: str, config=None):
    """The kept results of ``eval_key`` while the labels are as they were then (and of the same
    fields as ``config``), else None."""
    path = _path(dataset, eval_key)
    try:
        with open(path, "rb") as f:
            kept = plain_pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - a damaged or foreign file: computed again, then written anew
        return None
    if not isinstance(kept, dict) or kept.get("format") != FORMAT or kept.get("fingerprint") != fingerprint(dataset):
        return None
    results = kept["results"]
    if config is not None and (results.gt_field, results.pred_field) != (config.gt_field, config.pred_field):
        return None
    return results
