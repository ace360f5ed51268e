"""Datasets built in bulk for the scale tests: one sample added through FiftyOne, its raw
document the template of the copies inserted through ``store.writer``."""

from __future__ import annotations


def dataset_with_template(name: str, first) -> tuple[object, dict]:
    """A new dataset ``name`` (any old one deleted) holding sample ``first``, and first's raw document."""
    from maskreview.core.store import connect, reader

    fo = connect()
    if name in fo.list_datasets():
        fo.delete_dataset(name)
    dataset = fo.Dataset(name)
    dataset.add_sample(first)
    return dataset, reader.one(dataset, first.id)
