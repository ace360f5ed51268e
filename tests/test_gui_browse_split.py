"""The window's work comes in short blocks, with the event loop running between them (issue 17,
the stall row): a browse step paints the canvas first and the Sample panel and the Loupe a turn
later; a model run's first write into a new field puts the field in the panels without reloading
the dataset (15-45 ms on the GUI thread), and the field is named after its model at the end."""

from __future__ import annotations

import pytest
from helpers_gui import demo_window, settle
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication


@pytest.fixture
def window(qtbot, fo, demo_coco, tmp_path):
    with demo_window(qtbot, tmp_path, demo_coco) as win:
        yield win


class PaintPasses(QObject):
    """For each watched widget, the window's paint passes (UpdateRequests) it painted in."""

    def __init__(self, window, widgets: dict):
        super().__init__()
        self.window, self.widgets = window, widgets
        self.passes = 0
        self.painted: dict[str, list[int]] = {name: [] for name in widgets}

    def eventFilter(self, obj, event):  # noqa: N802
        if obj is self.window and event.type() == QEvent.Type.UpdateRequest:
            self.passes += 1
        elif event.type() == QEvent.Type.Paint:
            for name, widget in self.widgets.items():
                if obj is widget:
                    self.painted[name].append(self.passes)
        return False


def test_a_browse_step_paints_the_canvas_before_the_sample_panel_and_the_loupe(window, qtbot):
    win = window
    win.docks["Loupe"].raise_()
    settle(qtbot)
    assert win.loupe.isVisible() and win.info_panel.sample_label.isVisible()
    passes = PaintPasses(win, {"canvas": win.canvas.viewport(), "loupe": win.loupe,
                               "sample": win.info_panel.sample_label})
    QApplication.instance().installEventFilter(passes)
    try:
        before = win.current_sample_id
        win.do_next_sample()
        assert win.current_sample_id != before
        settle(qtbot)
    finally:
        QApplication.instance().removeEventFilter(passes)
    painted = passes.painted
    assert painted["canvas"] and painted["loupe"] and painted["sample"], painted
    # one pass painted all three before: the step and every panel's paint were one ~20 ms block
    assert min(painted["loupe"]) > min(painted["canvas"]) and min(painted["sample"]) > min(painted["canvas"])
    name = win.canvas.data.filepath.rsplit("/", 1)[-1]
    assert name in win.info_panel.sample_label.text()  # the panel follows, and shows the sample on show


def test_a_runs_first_write_into_a_new_field_does_not_reload_the_dataset(window, qtbot, monkeypatch):
    win = window
    dataset = win.dataset
    assert "predictions" not in dataset.get_field_schema()
    reloads = []
    reload = type(dataset).reload

    def counted(self, *args, **kwargs):  # the real reload, noted with whether the run was still going
        reloads.append(win.inference is not None)
        return reload(self, *args, **kwargs)

    monkeypatch.setattr(type(dataset), "reload", counted)
    win.model_runs.choose("demo")
    seen = []
    job = win.run_inference("dataset")
    job.progress.emitter.written.connect(lambda ids: seen.append("predictions" in win.label_fields))
    qtbot.waitUntil(lambda: win.inference is None and not job.isRunning(), timeout=180_000)
    settle(qtbot)
    assert seen and seen[0]  # the field is in the panels from the first write on
    assert True not in reloads, reloads  # no reload while the model ran
    panel = win.fields_panel.field_list
    names = [panel.item(i).text() for i in range(panel.count())]
    assert any(t.startswith("predictions") and t.endswith("by demo") for t in names), names
    assert "predictions" in win.dataset.get_field_schema()


def test_the_overlays_panel_shows_the_style_again_after_a_change_nothing_applied(qtbot):
    """A browse step's ``sync`` of the same style does nothing; a change the reviewer made in the
    panel that the canvas did not take (nothing applied it) is still put back by the next sync."""
    from maskreview.gui.canvas.view import OverlayStyle
    from maskreview.gui.panels.fields import FieldsPanel

    panel = FieldsPanel()
    qtbot.addWidget(panel)
    panel.set_fields(["ground_truth", "predictions"])
    style = OverlayStyle(hidden_fields=frozenset({"predictions"}))
    panel.sync(style)
    assert panel.field_list.item(1).checkState().name == "Unchecked" and panel.toggles["fills"].isChecked()
    panel.toggles["fills"].setChecked(False)  # the reviewer's click: emits changed, which no one applies here
    panel.sync(style)
    assert panel.toggles["fills"].isChecked()
    panel.set_fields(["ground_truth", "predictions"])  # a refill checks every row again
    panel.sync(style)
    assert panel.field_list.item(1).checkState().name == "Unchecked"
