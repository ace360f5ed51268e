"""store.dataset_doc.changed_since_loaded: the window reloads its dataset only when another
process (the model worker) changed the stored document."""

from __future__ import annotations

import os
import subprocess
import sys

from maskreview.core.store.dataset_doc import changed_since_loaded

OTHER = """
import sys
from maskreview.core import store
store.configure(); fo = store.connect()
from maskreview.core.model.provenance import record_run
ds = fo.load_dataset(sys.argv[1])
if sys.argv[2] == "field":
    ds.add_sample_field("p", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
else:
    record_run(ds, "p", {"model": "demo", "run_key": "k"})
"""


def _in_another_process(name: str, what: str) -> None:
    out = subprocess.run([sys.executable, "-c", OTHER, name, what], capture_output=True, text=True, timeout=300,
                         env=os.environ)
    assert out.returncode == 0, out.stderr[-2000:]


def test_changed_since_loaded_follows_another_processes_writes(fo, tmp_path):
    from maskreview.core.demo import write_demo_dataset
    from maskreview.core.model.provenance import prediction_fields
    from maskreview.core.sources import open_source

    mine = open_source(write_demo_dataset(tmp_path / "demo", n=3, seed=1))
    mine.reload()
    assert not changed_since_loaded(mine)
    _in_another_process(mine.name, "field")
    assert changed_since_loaded(mine) and "p" not in mine.get_field_schema()
    mine.reload()
    assert not changed_since_loaded(mine) and "p" in mine.get_field_schema()
    _in_another_process(mine.name, "record")  # the run's record: the dataset's info and the field's
    assert changed_since_loaded(mine) and "p" not in prediction_fields(mine)
    mine.reload()
    assert not changed_since_loaded(mine) and prediction_fields(mine)["p"]["model"] == "demo"
    mine.info["own"] = 1
    mine.save()  # its own save: nothing to reload
    assert not changed_since_loaded(mine)


def test_refresh_takes_in_run_records_without_a_reload_and_reloads_for_anything_else(fo, tmp_path):
    """store.dataset_doc.refresh: the model worker's run records (``info``, the field's info) are
    read in alone; a new field (any other change) reloads; a save afterwards keeps their record."""
    from maskreview.core.demo import write_demo_dataset
    from maskreview.core.model.provenance import prediction_fields
    from maskreview.core.sources import open_source
    from maskreview.core.store.dataset_doc import refresh, stored_shape

    mine = open_source(write_demo_dataset(tmp_path / "demo", n=3, seed=1))
    mine.reload()
    shape = stored_shape(mine, as_loaded=True)
    assert shape is not None
    _in_another_process(mine.name, "field")
    classes = mine._sample_doc_cls
    shape = refresh(mine, shape)  # a new field: reloaded
    assert "p" in mine.get_field_schema() and mine._sample_doc_cls is not classes and not changed_since_loaded(mine)
    _in_another_process(mine.name, "record")
    assert changed_since_loaded(mine)
    classes = mine._sample_doc_cls
    shape = refresh(mine, shape)  # only the run's record: read in, no reload
    assert mine._sample_doc_cls is classes
    assert not changed_since_loaded(mine) and prediction_fields(mine)["p"]["model"] == "demo"
    mine.info["own"] = 1
    mine.save()
    again = fo.load_dataset(mine.name)
    again.reload()
    assert again.info["own"] == 1 and prediction_fields(again)["p"]["model"] == "demo"  # their record kept
    _in_another_process(mine.name, "field")  # the same field again: nothing changes, nothing to reload
    assert refresh(mine, None) is not None and "p" in mine.get_field_schema()  # no shape known: reloaded
