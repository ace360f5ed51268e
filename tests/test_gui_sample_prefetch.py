"""Browsing reads the next and previous samples ahead on a worker thread (gui/sample_prefetch.py):
what shows is the sample the browser is on with its labels as stored, a write the window knows of
(a model run's batch, an edit) is never hidden by an older read-ahead, and an edit made right
after moving on lands on the sample now on show."""

from __future__ import annotations

import time

import pytest

from helpers_gui import open_window
from maskreview.core.fields import GT_FIELD
from maskreview.core.sources import open_source


@pytest.fixture
def window(qtbot, fo, tmp_path, monkeypatch):
    from maskreview.core.demo import write_demo_dataset

    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    win = open_window(qtbot, tmp_path, open_source(write_demo_dataset(tmp_path / "demo", n=6, seed=5)))
    win.browser.select_row(0)
    yield win
    win.close()


def _read_ahead(win, qtbot, sample_id):
    qtbot.waitUntil(lambda: sample_id in win.prefetch._ahead and win.prefetch._ahead[sample_id].future.done(),
                    timeout=10000)


def _stored_gt_ids(dataset, sample_id):
    dets = dataset[sample_id][GT_FIELD]
    return sorted(d.id for d in dets.detections) if dets is not None else []


def _shown_gt_ids(win):
    return sorted(i.id for i in win.canvas.data.fields.get(GT_FIELD, []))


def test_next_sample_comes_from_the_read_ahead_with_its_stored_labels(window, qtbot):
    win = window
    ids = win.browser.visible_ids()
    for k in range(1, 4):
        _read_ahead(win, qtbot, ids[k])
        hits = win.prefetch.hits
        win.do_next_sample()
        assert win.prefetch.hits == hits + 1  # read ahead, not on the GUI thread
        assert win.current_sample_id == ids[k] == win.browser.current_id() == win.state.current_sample
        assert _shown_gt_ids(win) == _stored_gt_ids(win.dataset, ids[k])
        assert win.canvas.data.version is not None
    win.do_prev_sample()  # back: the previous one was read ahead too
    assert win.current_sample_id == ids[2] and _shown_gt_ids(win) == _stored_gt_ids(win.dataset, ids[2])


def test_a_write_the_window_knows_of_is_not_hidden_by_an_older_read_ahead(window, qtbot):
    win = window
    nxt = win.browser.visible_ids()[1]
    _read_ahead(win, qtbot, nxt)
    sample = win.dataset[nxt]
    before = _stored_gt_ids(win.dataset, nxt)
    assert len(before) >= 2
    kept = sample[GT_FIELD].detections[0].id
    sample[GT_FIELD].detections = sample[GT_FIELD].detections[:1]  # a model run's batch, an edit, an undo...
    sample.save()
    win.browser.model.invalidate([nxt])  # ...each tells the window (its thumbnail redraws)
    win.do_next_sample()
    assert win.current_sample_id == nxt
    assert _shown_gt_ids(win) == _stored_gt_ids(win.dataset, nxt) == [kept]


def test_an_old_read_ahead_is_read_again(window, qtbot, monkeypatch):
    """Another reviewer's write the window is not told of: a read-ahead older than MAX_AGE is not used."""
    from maskreview.gui import sample_prefetch

    win = window
    nxt = win.browser.visible_ids()[1]
    _read_ahead(win, qtbot, nxt)
    monkeypatch.setattr(sample_prefetch, "MAX_AGE", 0.05)
    sample = win.dataset[nxt]
    sample[GT_FIELD].detections = []
    sample.save()
    time.sleep(0.1)
    win.do_next_sample()
    assert win.current_sample_id == nxt and _shown_gt_ids(win) == []


def test_an_edit_right_after_moving_on_lands_on_the_sample_on_show(window, qtbot):
    from maskreview.core.editing.ops import DeleteLabels, LabelRef

    win = window
    ids = win.browser.visible_ids()
    first_before = _stored_gt_ids(win.dataset, ids[0])
    _read_ahead(win, qtbot, ids[1])
    win.do_next_sample()
    assert win.prefetch.hits >= 1 and win.current_sample_id == ids[1]
    victim = win.canvas.data.fields[GT_FIELD][0]
    change = win.edits.apply(DeleteLabels((LabelRef(win.current_sample_id, GT_FIELD, victim.id),)))
    assert change is not None and not change.empty  # no conflict: the read-ahead's version is the stored one
    assert victim.id not in _stored_gt_ids(win.dataset, ids[1])
    assert victim.id not in _shown_gt_ids(win) and win.current_sample_id == ids[1]
    assert _stored_gt_ids(win.dataset, ids[0]) == first_before  # the sample moved away from is untouched
    win.undo_stack.undo()
    assert victim.id in _stored_gt_ids(win.dataset, ids[1])


def test_browsing_does_not_write_the_overlay_style_at_each_step(window, qtbot, monkeypatch):
    """Each save of the style is a QSettings write (synced to disk on the GUI thread): only a change saves it."""
    win = window
    saved = []
    monkeypatch.setattr(win.settings, "save_style", lambda style: saved.append(style))
    for _ in range(3):
        win.do_next_sample()
    assert saved == []
    win.canvas.set_style(opacity=0.2)
    assert len(saved) == 1 and saved[0].opacity == 0.2


def test_a_neighbour_written_after_its_read_ahead_is_read_ahead_again(window, qtbot):
    """A model run writes the samples while the reviewer browses them: the next sample, read ahead
    before its batch landed, is read again on the worker thread, so the step still takes it from
    the read-ahead (not a database read and decode on the GUI thread) and shows what is stored."""
    win = window
    nxt = win.browser.visible_ids()[1]
    _read_ahead(win, qtbot, nxt)
    first_read = win.prefetch._ahead[nxt]
    sample = win.dataset[nxt]
    kept = sample[GT_FIELD].detections[0].id
    sample[GT_FIELD].detections = sample[GT_FIELD].detections[:1]
    sample.save()
    win.browser.model.invalidate([nxt])  # as ModelRuns._written does for each batch
    qtbot.waitUntil(lambda: nxt in win.prefetch._ahead and win.prefetch._ahead[nxt] is not first_read
                    and win.prefetch._ahead[nxt].future.done(), timeout=10000)
    hits = win.prefetch.hits
    win.do_next_sample()
    assert win.prefetch.hits == hits + 1 and win.current_sample_id == nxt
    assert _shown_gt_ids(win) == _stored_gt_ids(win.dataset, nxt) == [kept]
