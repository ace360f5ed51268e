"""The browser's search on a big dataset scans its index as two halves at once
(``store.reader.prepare_search_split``, issue 17: search with many hits at 100,000 samples):
the hits are exactly those of the one query, for search strings with regex metacharacters,
case, ids, class names and tags in them, and the same when the split key has gone stale."""

from __future__ import annotations

import re

import pytest

NAMES = ["a.b_{i}.jpg", "x(1)_{i}.PNG", "[1]_{i}.jpg", "pl+us_{i}.jpg", "dollar$_{i}.jpg", "caret^_{i}.jpg",
         "star*_{i}.jpg", "q?mark_{i}.jpg", "pipe|_{i}.jpg", "br{{2}}_{i}.jpg", "Ünïcode_é_{i}.jpg", "IMG_{i:05d}.JPG",
         "img_{i:05d}.jpg", "back\\slash_{i}.jpg", "sp ace_{i}.jpg", "cat_{i}.jpg"]
SEARCHES = ["9", "_0012", "IMG", "img_001", "a.b", ".", "(", ")", "(1)", "[1]", "+", "$", "^", "*", "?", "|", "{2}",
            "\\", "back", "slash", "é", "É", "ünï", " ", "jpg", ".png", "data", "run_9", "cat", "hard", "night",
            "a.*b", "^img", "jpg$", "x(1", "zzz-no-hit"]


@pytest.fixture(scope="module")
def tricky(tmp_path_factory):
    """Samples whose file names hold regex metacharacters, case and non-ASCII letters, in folders
    whose names hold search text too (``run_9``, ``data``): only the file name counts."""
    from bson import ObjectId

    from helpers_store import dataset_with_template
    from maskreview.core.store import connect, reader, writer
    from maskreview.gui import queries

    fo = connect()
    first = fo.Sample(filepath="/data/run_9/first.jpg", tags=["hard"],
                      ground_truth=fo.Detections(detections=[fo.Detection(label="cat", bounding_box=[0.1, 0.1, 0.2, 0.2])]))
    dataset, template = dataset_with_template("search-split", first)
    docs = [{**template, "_id": ObjectId(), "filepath": f"/data/run_9{i % 3}/" + NAMES[i % len(NAMES)].format(i=i),
             "tags": ["hard"] if i % 7 == 0 else ["night"] if i % 5 == 0 else []} for i in range(1, 640)]
    writer.insert_documents(dataset, docs)
    queries.prepare_browsing(dataset)  # the indexes; below SPLIT_SEARCH_FROM samples: no split
    yield dataset
    dataset.delete()


def _in_name(text: str, path: str) -> bool:
    """The search's meaning: ``text`` occurs with no folder separator after it (case-insensitive)."""
    low, path = text.strip().lower(), path.lower()  # blanks around the text do not count (a blank: all)
    return any(not re.search(r"[/\\]", path[m.start() + len(low):]) for m in re.finditer(re.escape(low), path))


def test_the_split_search_finds_exactly_what_the_one_query_finds(tricky):
    from maskreview.core.store import reader

    key = reader.collection(tricky).full_name
    assert key not in reader._SEARCH_SPLITS  # noqa: SLF001 - 640 samples: one query
    ids, paths = reader.ids_and_paths(tricky)
    searches = SEARCHES + [ids[3], ids[3][:8].upper()]  # a sample's id is not in its file name
    one = {text: sorted(reader.browse_ids(tricky, text)) for text in searches}
    for text in searches:  # the one query is a case-insensitive substring of the file name
        if text.isascii():
            expected = sorted(sid for sid, p in zip(ids, paths) if _in_name(text, p))
            assert one[text] == expected, text
    assert one["É"] == one["é"] and one["é"] and one["zzz-no-hit"] == one[ids[3]] == one["data"] == []
    mid = reader.prepare_search_split(tricky, min_samples=0)
    assert mid is not None and min(paths) < mid <= max(paths)
    for text in searches:
        assert sorted(reader.browse_ids(tricky, text)) == one[text], text
        split = reader.browse_ids(tricky, text)
        assert len(split) == len(set(split))  # each hit once
    for tag in ("hard", "night"):  # with the tag filter: the one query (the tags index), the same hits
        expected = sorted(sid for sid in one["jpg"] if sid in set(reader.browse_ids(tricky, "", tag)))
        assert sorted(reader.browse_ids(tricky, "jpg", tag)) == expected
    for stale in ("", "/", "/data/run_90/z", "\uffff", min(paths), max(paths)):  # samples came or went since
        reader._SEARCH_SPLITS[key] = stale  # noqa: SLF001
        for text in ("9", "IMG", "a.b", "\\", "é"):
            assert sorted(reader.browse_ids(tricky, text)) == one[text], (stale, text)
            assert reader._SEARCH_SPLITS.get(key) == stale, (stale, text)  # noqa: SLF001 - no fallback taken
    reader._SEARCH_SPLITS.pop(key)  # noqa: SLF001


def test_the_split_halves_each_read_index_keys_only_and_together_every_key_once(tricky):
    from maskreview.core.store import reader

    from test_scale_queries import Profiled

    reader.prepare_search_split(tricky, min_samples=0)
    try:
        with Profiled(tricky) as prof:
            hits = reader.browse_ids(tricky, "9")
        searches = prof.queries("filepath")
        assert len(searches) == 2 and hits
        assert all("IXSCAN { filepath: 1, _id: 1 }" in op["planSummary"] for op in searches)
        assert prof.examined() == 0  # no sample document read
        n = reader.collection(tricky).count_documents({})
        assert n <= sum(op["keysExamined"] for op in searches) <= n + 2
    finally:
        reader._SEARCH_SPLITS.pop(reader.collection(tricky).full_name, None)  # noqa: SLF001


def test_without_its_index_the_search_falls_back_to_one_query(tricky):
    from maskreview.core.store import reader

    coll = reader.collection(tricky)
    before = sorted(reader.browse_ids(tricky, "img_001"))
    reader.prepare_search_split(tricky, min_samples=0)
    coll.drop_index(reader.SEARCH_INDEX)
    try:
        assert sorted(reader.browse_ids(tricky, "img_001")) == before and before
        assert coll.full_name not in reader._SEARCH_SPLITS  # noqa: SLF001
    finally:
        reader.ensure_index(tricky, reader.SEARCH_INDEX)
