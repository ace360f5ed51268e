"""The FiftyOne App, really served and loaded in headless Chromium, shows maskreview's work:
edits, tags and an evaluation made through maskreview, and a view saved by maskreview.

The App's server is asked through its own endpoints (GraphQL for the dataset, its fields,
evaluations, saved views and aggregations; the operator route for the Model Evaluation panel);
Chromium renders the page (its DOM after the App's scripts ran, and a screenshot).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import requests
from helpers_app import reviewed_dataset

from maskreview.core import app_bridge as ab

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install "
                                "chromium; make setup installs it from packaging/system-packages.txt)")

DATASET_QUERY = """query ($name: String!) { dataset(name: $name) {
  datasetId name sampleFields { path description }
  evaluations { key config { gtField predField method } }
  savedViews { name slug viewStages } } }"""
AGGREGATE_QUERY = """query ($name: String!, $view: BSONArray!, $aggs: [Aggregate!]!) {
  aggregate(datasetName: $name, view: $view, aggregations: $aggs) {
    ... on CountResponse { count }
    ... on StrCountValuesResponse { values { key value } }
    ... on BoolCountValuesResponse { bools: values { flag: key value } } } }"""


def _chromium(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=20000", *args], capture_output=True, text=True, timeout=timeout)


def _values(response: dict) -> dict:
    if "bools" in response:
        return {v["flag"]: v["value"] for v in response["bools"]}
    return {v["key"]: v["value"] for v in response["values"]}


@pytest.fixture
def served(fo, demo_coco):
    dataset, done = reviewed_dataset(demo_coco, "app-browser")
    ab.save_view(dataset, "reviewed in maskreview", ab.build_view(dataset, ab.ViewSpec(tag="reviewed")))
    server = ab.show(dataset, ab.build_view(dataset, ab.ViewSpec(tag="reviewed", sort=("fp", "eval", ()))))
    yield dataset, done, server
    ab.shutdown()
    assert server.process is None


def test_the_app_shows_every_edit_tag_and_evaluation(served, tmp_path):
    dataset, done, server = served
    port = server.port
    assert ab.serves_dataset(port, dataset)

    info = ab.graphql(port, DATASET_QUERY, {"name": dataset.name})["dataset"]
    assert info["datasetId"] == str(dataset._doc.id)
    assert [(e["key"], e["config"]["gtField"], e["config"]["predField"], e["config"]["method"])
            for e in info["evaluations"]] == [("eval", "ground_truth", "predictions", "coco")]
    assert [v["name"] for v in info["savedViews"]] == ["reviewed in maskreview"]
    described = {f["path"]: f["description"] for f in info["sampleFields"]}
    for path in ("review_rev", "eval_fp", "ground_truth.detections.review_added", "ground_truth_original",
                 "ground_truth.detections.source_label_id", "predictions.detections.eval"):
        assert described.get(path), path  # declared, with its description, in the App's schema

    fields = ("ground_truth.detections", "predictions.detections", "ground_truth_original.detections")
    aggs = ([{"count": {"field": f}} for f in fields]
            + [{"countValues": {"field": f}} for f in ("tags", "predictions.detections.tags",
                                                       "ground_truth.detections.label",
                                                       "ground_truth.detections.review_added")])
    got = ab.graphql(port, AGGREGATE_QUERY, {"name": dataset.name, "view": [], "aggs": aggs})["aggregate"]
    assert [g["count"] for g in got[:3]] == [dataset.count(f) for f in fields]
    assert _values(got[3]) == dataset.count_values("tags") == {"reviewed": 2, "hard": 1}
    assert _values(got[4]) == dataset.count_values("predictions.detections.tags") == {"wrong": 1}
    assert _values(got[5]) == {k: v for k, v in dataset.count_values("ground_truth.detections.label").items()}
    assert _values(got[6]).get(True) == 2  # the promoted and the added instance
    # the saved view as the App loads it (its stages; the server's viewName argument is ignored for aggregations)
    stages = [json.loads(s) for s in info["savedViews"][0]["viewStages"]]
    assert [s["_cls"].rsplit(".", 1)[1] for s in stages] == ["MatchTags"]
    saved = ab.graphql(port, AGGREGATE_QUERY, {"name": dataset.name, "view": stages,
                                               "aggs": [{"count": {"field": "ground_truth.detections"}}]})
    assert saved["aggregate"][0]["count"] == dataset.match_tags("reviewed").count("ground_truth.detections")

    # the App's Model Evaluation panel, run by the server as when the App opens it
    panel = {"operator_uri": "@voxel51/panels/model_evaluation_panel_builtin", "dataset_name": dataset.name,
             "view": [], "params": {"__method__": "get_evaluation_data", "panel_id": "test", "key": "eval",
                                    "state": {}, "panel_state": {"view": {"key": "eval"}}}}
    result = requests.post(f"{server.url}operators/execute", json=panel, timeout=120).json()["result"]
    assert result["info"]["key"] == "eval"
    assert result["metrics"]["mAP"] == pytest.approx(dataset.load_evaluation_results("eval").mAP())

    # the page itself, rendered by Chromium: this dataset, the session's view, maskreview's fields
    dom = _chromium("--dump-dom", server.dataset_url(dataset.name)).stdout
    for text in (dataset.name, "MatchTags", "SortBy", "review_rev", "eval_tp", "ground_truth_original"):
        assert text in dom, text
    png = tmp_path / "app.png"
    _chromium(f"--screenshot={png}", "--window-size=1280,800", server.dataset_url(dataset.name))
    import cv2

    image = cv2.imread(str(png))
    assert image is not None and image.shape[:2] == (800, 1280)
    assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 500  # not a blank page

    # a second launch reuses the server and shows its view
    process = server.process
    again = ab.show(dataset, ab.build_view(dataset, ab.ViewSpec(tag="hard")))
    assert again is server and server.process is process and process.poll() is None
    assert ab._session.view.values("id") == dataset.match_tags("hard").values("id")
