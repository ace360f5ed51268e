"""Pickles read back by maskreview (the model worker's replies, evaluations kept in the cache dir)
build plain data only: a pickle written by someone else cannot run code."""

from __future__ import annotations

import datetime
import os
import pickle
import subprocess

import numpy as np
import pytest
from bson import ObjectId

from maskreview.core import plain_pickle


class _Trap:
    """Unpickling this creates a file (``open(path, "w")``): what a booby-trapped cache file does."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_plain_data_round_trips_in_every_protocol():
    data = {"array": np.arange(6, dtype=np.uint16).reshape(2, 3), "mask": np.zeros((3, 2), bool),
            "scalars": (np.float32(0.5), np.int64(7)), "dtype": np.dtype("<f4"), "when": datetime.datetime(2026, 1, 2),
            "id": ObjectId(), "set": {1, 2}, "bytes": b"\x00\x01", "nested": [{"a": None, "b": 1.5}]}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = plain_pickle.loads(pickle.dumps(data, protocol=protocol))
        assert np.array_equal(back["array"], data["array"]) and back["array"].dtype == np.uint16
        assert back["scalars"] == data["scalars"] and back["id"] == data["id"] and back["bytes"] == data["bytes"]
        assert back["set"] == {1, 2} and back["when"] == data["when"] and back["nested"] == data["nested"]


@pytest.mark.parametrize("thing", [os.system, subprocess.Popen, eval, getattr, np.save, np.load, np.memmap,
                                   __import__("maskreview.core.keymaps", fromlist=["x"]).write_key_map])
def test_functions_and_resource_classes_are_refused(thing):
    with pytest.raises(pickle.UnpicklingError, match="not plain data"):
        plain_pickle.loads(pickle.dumps(thing))


def test_a_booby_trapped_pickle_runs_nothing(tmp_path):
    target = tmp_path / "pwned"
    with pytest.raises(pickle.UnpicklingError):
        plain_pickle.loads(pickle.dumps({"results": _Trap(str(target))}))
    assert not target.exists()


def test_a_booby_trapped_kept_evaluation_is_ignored_not_run(demo_coco, tmp_path):
    """A file in the cache dir where a kept evaluation goes: reopening ignores it (computes again)."""
    from helpers_coco import perturbed_demo
    from maskreview.core.evaluation import evaluate_and_store
    from maskreview.core.review import stored
    from maskreview.core.review.evaluation import stored_evaluation

    target = tmp_path / "pwned"
    with perturbed_demo(demo_coco, "stored-trap", seed=2) as dataset:
        results = evaluate_and_store(dataset.view(), eval_key="eval")
        key, config = stored_evaluation(dataset)
        path = stored.keep(dataset, results)
        assert stored.load(dataset, key, config) is not None  # a real kept evaluation reads back
        kept = {"format": stored.FORMAT, "fingerprint": stored.fingerprint(dataset), "results": _Trap(str(target))}
        path.write_bytes(pickle.dumps(kept))
        assert stored.load(dataset, key, config) is None
    assert not target.exists()
