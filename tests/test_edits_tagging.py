"""Tag keys as data (defaults + the user's JSON), key presses as tag ops, review progress."""

from __future__ import annotations

import pytest

from maskreview.core import tagging as tg
from maskreview.core.editing.ops import LabelRef, LabelTags, SampleTags
from maskreview.core.errors import BadInputError
from maskreview.core.sources import open_source
from maskreview.core.editing.session import EditSession


def test_key_map_defaults_and_user_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "cfg"))
    assert tg.load_tag_keys() == tg.DEFAULT_TAG_KEYS
    tg.save_tag_keys({"1": "false-positive", "3": None, "x": "blurry"})
    keys = tg.load_tag_keys()
    assert keys["1"] == "false-positive" and keys["x"] == "blurry" and "3" not in keys and keys["r"] == "reviewed"
    tg.tag_keys_path().write_text("[1, 2]")
    with pytest.raises(BadInputError, match="key map"):
        tg.load_tag_keys()


def test_keys_tag_labels_or_samples_and_count_progress(fo, demo_coco, tmp_path):
    dataset = open_source(demo_coco, name="tagging")
    keys = dict(tg.DEFAULT_TAG_KEYS)
    ids = dataset.values("id")
    first = dataset[ids[0]]
    ref = LabelRef(first.id, "ground_truth", first.ground_truth.detections[0].id)
    assert isinstance(tg.op_for_key("1", [first.id], [ref], keys), LabelTags)
    assert isinstance(tg.op_for_key("r", ids[:3], None, keys), SampleTags)
    assert tg.op_for_key("z", ids[:1], None, keys) is None
    with EditSession(dataset, journal_root=tmp_path / "j") as session:
        session.apply(tg.op_for_key("r", ids[:3], None, keys))
        session.apply(tg.op_for_key("1", [first.id], [ref], keys))
        assert tg.review_progress(dataset) == (3, 12)
        assert dataset.count_label_tags() == {"fp": 1}
        session.apply(tg.op_for_key("r", ids[:3], None, keys))  # pressed again: toggled off
        session.apply(tg.op_for_key("r", ids[2:4], None, keys))  # a mixed selection: tagged
        assert tg.review_progress(dataset) == (2, 12)
        assert tg.review_progress(dataset.match_tags("reviewed")) == (2, 2)
