"""maskreview's view as FiftyOne view stages, saved views, the schema the App reads, and the
App server's port checks (tests/test_app_browser.py runs the server and a real browser)."""

from __future__ import annotations

import socket
import time

import pytest
from conftest import run_cli
from helpers_app import reviewed_dataset

from maskreview.core import app_bridge as ab
from maskreview.core.errors import BadInputError, MaskreviewError
from maskreview.core.field_docs import describe


@pytest.fixture
def reviewed(fo, demo_coco):
    return reviewed_dataset(demo_coco, "app-bridge")


def _stage_names(view) -> list[str]:
    return [type(s).__name__ for s in view._stages]


def test_view_stages_show_what_maskreview_shows(reviewed):
    from maskreview.gui import queries

    dataset, done = reviewed
    view = ab.build_view(dataset, ab.ViewSpec(tag="reviewed"))
    assert _stage_names(view) == ["MatchTags"]
    assert set(view.values("id")) == set(queries.ids_with_tag(dataset, "reviewed")) == {done["sample"], done["second"]}

    spec = ab.ViewSpec(label_class=("ground_truth", "square"), min_confidence=0.5,
                       score_fields=("ground_truth", "predictions"))
    view = ab.build_view(dataset, spec)
    assert _stage_names(view) == ["FilterLabels", "FilterLabels", "Match"]
    assert set(view.values("id")) == set(queries.ids_with_label(dataset, "ground_truth", "square", 0.5))
    scores = [c for c in view.values("predictions.detections.confidence", unwind=True) if c is not None]
    assert scores and min(scores) >= 0.5
    assert view.count("ground_truth.detections") == dataset.match(view._stages[-1]._filter).count(
        "ground_truth.detections")  # ground truth has no scores: none hidden

    name = dataset.values("filepath")[3].rsplit("/", 1)[1]
    view = ab.build_view(dataset, ab.ViewSpec(text=name.upper()))  # as the browser: case-insensitive
    assert [p.rsplit("/", 1)[1] for p in view.values("filepath")] == [name]


def test_drill_down_and_sort_become_select_and_sort_by(reviewed):
    from maskreview.core.evaluation import analysis, evaluate_and_store

    dataset, done = reviewed
    results = evaluate_and_store(dataset.view(), eval_key="eval")
    fn_labels = tuple(results.gt.label_id[results.gt.outcome == "fn"])
    fn_samples = tuple(sorted({results.sample_ids[i] for i in results.gt.img[results.gt.outcome == "fn"]}))
    view = ab.build_view(dataset, ab.ViewSpec(sample_ids=fn_samples, label_ids=fn_labels))
    assert _stage_names(view) == ["Select", "SelectLabels"]
    assert set(view.values("id")) == set(fn_samples)
    assert sorted(view.values("ground_truth.detections.id", unwind=True)) == sorted(fn_labels)

    order = analysis.sample_order(results, "fp")
    view = ab.build_view(dataset, ab.ViewSpec(sort=("fp", "eval", tuple(order))))
    assert _stage_names(view) == ["SortBy"]
    fps = view.values("eval_fp")
    assert fps == sorted(fps, reverse=True) and fps[0] > 0
    order = analysis.sample_order(results, "f1")
    view = ab.build_view(dataset, ab.ViewSpec(sort=("f1", "eval", tuple(order))))
    assert view.values("id") == order


def test_saved_views_both_ways(reviewed):
    dataset, done = reviewed
    view = ab.build_view(dataset, ab.ViewSpec(tag="hard"))
    ab.save_view(dataset, "hard ones", view, description="tag hard")
    with pytest.raises(BadInputError, match="already has a saved view 'hard ones'"):
        ab.save_view(dataset, "hard ones", view)
    with pytest.raises(BadInputError, match="needs a name"):
        ab.save_view(dataset, "  ", view)
    # a view saved elsewhere (the App writes the same dataset document)
    from maskreview.core.store import fiftyone

    other = fiftyone().load_dataset(dataset.name)
    other.save_view("from the app", other.match_tags("reviewed").sort_by("filepath", reverse=True))
    assert ab.saved_views(dataset) == ["hard ones", "from the app"]
    loaded = ab.build_view(dataset, ab.ViewSpec(saved_view="from the app"))
    assert loaded.values("id") == other.match_tags("reviewed").sort_by("filepath", reverse=True).values("id")
    assert ab.build_view(dataset, ab.ViewSpec(saved_view="hard ones")).values("id") == [done["second"]]
    with pytest.raises(BadInputError, match="no saved view 'gone'.*hard ones"):
        ab.build_view(dataset, ab.ViewSpec(saved_view="gone"))


def _raw_paths(dataset) -> set[str]:
    """Every sample key and label attribute present in the documents themselves."""
    paths = set()
    for doc in dataset._sample_collection.find({}):
        for key, value in doc.items():
            paths.add(key)
            if isinstance(value, dict):
                for label in value.get("detections") or []:
                    paths.update(f"{key}.detections.{attr}" for attr in label)
    return {p for p in paths if not p.rsplit(".", 1)[-1].startswith("_")}


def test_every_attribute_maskreview_writes_is_declared_and_described(reviewed):
    dataset, done = reviewed
    schema = dataset.get_field_schema(flat=True)
    raw = _raw_paths(dataset)
    for expected in ("review_rev", "review_rev_by", "eval_tp", "ground_truth.detections.review_added",
                     "ground_truth.detections.source_label_id", "ground_truth.detections.source_score",
                     "ground_truth_original.detections.original_of", "predictions.detections.eval_biou"):
        assert expected in raw
    assert sorted(p for p in raw if p not in schema) == []

    assert dataset.list_evaluations() == ["eval"]
    info = dataset.get_evaluation_info("eval")
    assert (info.config.gt_field, info.config.pred_field, info.config.method) == ("ground_truth", "predictions", "coco")
    assert dataset.load_evaluation_results("eval").mAP() > 0

    describe(dataset)
    dataset.reload()
    for path in ("review_rev", "review_rev_by", "ground_truth_original", "ground_truth.detections.review_added",
                 "ground_truth.detections.source_model", "predictions_original.detections.original_of",
                 "eval_fp", "predictions.detections.eval", "ground_truth.detections.eval_iou"):
        assert dataset.get_field(path).description, path
    assert "false positives in evaluation 'eval'" in dataset.get_field("eval_fp").description
    assert describe(dataset) == []  # idempotent: nothing left to set


def test_a_taken_port_is_refused_with_one_line(fo, demo_coco):
    with socket.socket() as taken:
        taken.bind((ab.ADDRESS, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BadInputError, match=f"port {port} on 127.0.0.1 is in use by another program"):
            ab.start_server(port)
        from maskreview.core.sources import open_source

        open_source(str(demo_coco), name="app-port")
        proc = run_cli("app", "app-port", "--port", str(port), "--no-browser", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"maskreview: error: port {port} on 127.0.0.1 is in use by another program; choose another port (--port), "
        "or leave it out to take a free one"]
    assert ab.running_server() is None


def test_a_server_that_does_not_come_up_is_named_with_its_log(fo):
    with pytest.raises(MaskreviewError, match=r"did not answer on port \d+ within 0 s; its log: .*server-\d+\.log"):
        ab.start_server(timeout=0.01)
    assert ab.running_server() is None


def test_cli_app_serves_until_interrupted_and_a_second_launch_reuses_it(fo, demo_coco, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from conftest import REPO
    from maskreview.core.sources import open_source

    dataset = open_source(str(demo_coco), name="app-cli")
    ab.save_view(dataset, "first two", dataset.limit(2))
    log = open(tmp_path / "server.err", "w")  # not a pipe: an unread pipe that fills stops the server's writes
    # started with SIGINT ignored, as a background job of a non-interactive shell is (CI's, at times)
    first = subprocess.Popen([sys.executable, "-m", "maskreview", "app", "app-cli", "--no-browser"],
                             stdout=subprocess.PIPE, stderr=log, text=True, env=os.environ.copy(), cwd=REPO,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = first.stdout.readline()
        assert line.startswith("FiftyOne App: http://127.0.0.1:") and "/datasets/app-cli (Ctrl+C stops it)" in line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        assert ab.serves_dataset(port, dataset)
        again = run_cli("app", "app-cli", "--port", str(port), "--view", "first two", "--no-browser", timeout=120)
        assert again.returncode == 0, again.stderr
        assert "already serving 'app-cli'" in again.stdout and f":{port}/datasets/app-cli" in again.stdout
        first.send_signal(signal.SIGINT)
        assert first.wait(60) == 130, (tmp_path / "server.err").read_text()[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
    deadline = time.monotonic() + 30
    while not ab.port_is_free(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ab.port_is_free(port)  # the server stopped with the command
