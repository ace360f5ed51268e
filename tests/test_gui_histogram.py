"""The class histogram counts what the canvas shows: predictions at or above the confidence slider."""

from __future__ import annotations

import pytest

from helpers_gui import open_window

from helpers_coco import perturbed_demo

from maskreview.gui import queries


@pytest.fixture
def dataset(fo, demo_coco):
    with perturbed_demo(demo_coco, "gui-histogram", seed=4) as ds:
        yield ds


def _expected(ds, threshold: float) -> dict[str, int]:
    out: dict[str, int] = {}
    for labels, scores in zip(*ds.values(["predictions.detections.label", "predictions.detections.confidence"])):
        for label, score in zip(labels or [], scores or []):
            if score >= threshold:
                out[label] = out.get(label, 0) + 1
    return out


def test_counts_and_bar_filter_follow_the_confidence_slider(dataset, qtbot, tmp_path):
    assert queries.class_counts(dataset, "predictions", 0.9) == _expected(dataset, 0.9)
    assert sum(queries.class_counts(dataset, "ground_truth", 0.9).values()) == dataset.count("ground_truth.detections")
    win = open_window(qtbot, tmp_path, dataset)
    try:
        win.fields_panel.confidence.setValue(20)
        qtbot.waitUntil(lambda: win.histogram.counts.get("predictions") == _expected(dataset, 0.2), timeout=15000)
        low = sum(win.histogram.counts["predictions"].values())
        win.fields_panel.confidence.setValue(90)
        qtbot.waitUntil(lambda: win.histogram.counts.get("predictions") == _expected(dataset, 0.9), timeout=15000)
        high = win.histogram.counts["predictions"]
        assert sum(high.values()) < low
        cls = max(high, key=high.get)
        ids = queries.ids_with_label(dataset, "predictions", cls, 0.9)
        for sid in ids:
            sample = dataset[sid]
            assert any(d.label == cls and d.confidence >= 0.9 for d in sample.predictions.detections)
        assert len(ids) < len(queries.ids_with_label(dataset, "predictions", cls))
    finally:
        win.close()


def test_histogram_follows_a_model_run_writing_a_new_field(fo, demo_coco, qtbot, tmp_path):
    """The demo opens with ground truth only and the model's run writes ``predictions``: the
    histogram then counts them too (it used to keep counting ground_truth alone)."""
    from maskreview.core.evaluation import synthetic
    from maskreview.core.sources import open_source

    dataset = open_source(demo_coco, name=f"histogram-run-{tmp_path.name}")
    win = open_window(qtbot, tmp_path, dataset)
    try:
        qtbot.waitUntil(lambda: set(win.histogram.counts) == {"ground_truth"}, timeout=15000)
        synthetic.write_perturbed_predictions(dataset, seed=4)  # what the run's worker writes
        ids = dataset.values("id")
        job = type("Job", (), {"written": set(), "field": "predictions", "read_versions": {}})()
        win.model_runs._written(job, ids)  # a batch of the run landed
        assert "predictions" in win.state.label_fields
        qtbot.waitUntil(lambda: win.histogram.counts.get("predictions") == _expected(dataset, 0.5), timeout=15000)
    finally:
        win.close()
        dataset.delete()


def test_before_the_first_count_the_chart_says_it_is_counting_not_no_labels(qtbot):
    """The first count runs behind the window's opening: until it lands the empty chart must not
    tell a new user the dataset has no labels (the demo said "No labels" beside 528 of them)."""
    from maskreview.gui.panels.histogram import ClassHistogram

    chart = ClassHistogram()
    qtbot.addWidget(chart)
    assert chart.empty_text() == "Counting labels…"
    chart.set_counts({})
    assert chart.empty_text() == "No labels"
    chart.set_counts({"ground_truth": {"cell": 3}}, ["cell"])
    assert chart.counts == {"ground_truth": {"cell": 3}}
