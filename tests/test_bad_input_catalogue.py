"""The bad-input catalogue (issue 12, point 5): every row is an input a new user could try.

Each row writes its own file (or picks its own arguments) and must end the same way: exit code 2,
exactly one line on stderr (``maskreview: error: ...``) that names the input, no traceback
anywhere, and nothing changed: no new, removed or modified dataset, and no new, removed or
modified file (the intended outputs included). The rows run through ``maskreview.cli.main`` in one
driver process (``helpers_catalogue.py``, which captures at the file-descriptor level and prints
escaping exceptions as the interpreter would); rows marked isolated run as a real subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from helpers_catalogue import run_driver
from helpers_catalogue_inputs import (
    BASE, COLLIDE, Shared, CaseDir, Case, write_png, png_bytes, good_coco, coco_absolute_file_name, rle,
    coco_case, ann, image_entry, results_case, result, DROP, evil_pickle, evil_yaml, weights_case, torch_save,
    string_tensor, wrong_class_count, truncated_weights, config_case, yaml_file, base_chain, evil_model_dir,
    base_loop, args, train, infer, image_case, folder_with, raw_file, truncated_png, symlink_loop, fifo,
    unreadable, export_case, non_empty_folder, resume_booby_trap, collide, CLOSED_PORT, NAN_BBOX_JSON,
)

pytestmark = pytest.mark.slow

# --------------------------------------------------------------------------------------------
# the catalogue
# --------------------------------------------------------------------------------------------

CASES = [
    # images (import, explain)
    Case("img-empty", "H2", image_case(raw_file(b""))),
    Case("img-truncated", "H2", image_case(truncated_png)),
    Case("img-text-as-png", "H2", image_case(raw_file(b"this is text, not an image\n"))),
    Case("img-bomb", "H2", image_case(raw_file(png_bytes(60000, 60000)))),
    Case("img-bomb-in-folder", "H2", image_case(folder_with(("good.png", write_png),
                                                            ("img-bomb-in-folder.png",
                                                             lambda p: p.write_bytes(png_bytes(60000, 60000)))))),
    Case("img-bomb-skip-bad", "H2", image_case(folder_with(
        ("img-bomb-skip-bad.png", lambda p: p.write_bytes(png_bytes(60000, 60000)))), "--skip-bad")),
    Case("img-zero-width", "H2", image_case(raw_file(png_bytes(0, 16)))),
    Case("img-wrong-extension", "H2", image_case(lambda c: write_png(c.path(".txt")))),
    Case("img-directory-named-png", "H2", image_case(lambda c: (c.dir / f"{c.id}.png").mkdir(parents=True)
                                                     or c.dir / f"{c.id}.png")),
    Case("img-unreadable", "H2", image_case(unreadable)),
    Case("img-symlink-loop", "H2", image_case(symlink_loop)),
    Case("img-fifo", "H2", image_case(fifo)),
    Case("img-empty-folder", "H2", image_case(lambda c: (c.dir / c.id).mkdir(parents=True) or c.dir / c.id)),
    Case("img-folder-all-bad-skip", "H2", image_case(folder_with(
        ("one.png", lambda p: p.write_text("junk")), ("two.jpg", lambda p: p.write_bytes(b""))), "--skip-bad")),
    Case("img-missing", "H2", image_case(lambda c: c.path(".png"))),
    Case("img-line-break-in-name", "lead", image_case(folder_with(("img-line-break\nin-name.png",
                                                                    lambda p: p.write_bytes(b""))))),
    Case("img-explain-text", "H2", image_case(raw_file(b"not an image"), command="explain")),
    Case("img-explain-truncated", "H2", image_case(truncated_png, command="explain")),
    Case("img-explain-bomb", "H2", image_case(raw_file(png_bytes(60000, 60000)), command="explain")),
    Case("img-infer-bomb", "H2", image_case(raw_file(png_bytes(60000, 60000)), "--device", "cpu",
                                            command="infer")),

    # COCO instances files (import)
    Case("coco-not-json", "H2", coco_case(raw="not json at all")),
    Case("coco-empty-file", "H2", coco_case(raw="")),
    Case("coco-not-utf8", "H2", coco_case(raw=b'{"images": ["\xff\xfe\xfa"]}')),
    Case("coco-not-object", "H2", coco_case(raw="[1, 2, 3]")),
    Case("coco-images-not-list", "H2", coco_case(lambda d: {**d, "images": {"1": "a.png"}})),
    Case("coco-annotations-not-list", "H2", coco_case(lambda d: {**d, "annotations": 5})),
    Case("coco-categories-not-list", "H2", coco_case(lambda d: {**d, "categories": "circle"})),
    Case("coco-image-not-object", "H2", coco_case(lambda d: {**d, "images": [5, *d["images"]]})),
    Case("coco-annotation-not-object", "H2", coco_case(lambda d: {**d, "annotations": ["oops", *d["annotations"]]})),
    Case("coco-category-not-object", "H2", coco_case(lambda d: {**d, "categories": [7, *d["categories"]]})),
    Case("coco-bbox-strings", "H2", coco_case(ann(segmentation=None, bbox=["a", "b", "c", "d"]))),
    Case("coco-bbox-not-list", "H2", coco_case(ann(segmentation=None, bbox="4,4,16,16"))),
    Case("coco-deep-nesting", "H2", coco_case(raw='{"images": ' + "[" * 200000 + "]" * 200000 + "}")),
    Case("coco-rle-garbage", "H2", coco_case(ann(segmentation={"size": [32, 32], "counts": "\x7f~~~}}}garbage"}))),
    Case("coco-rle-overlong", "H2", coco_case(ann(segmentation={"size": [32, 32], "counts": rle(64, 64)["counts"]}))),
    Case("coco-rle-short", "H2", coco_case(ann(segmentation={"size": [32, 32], "counts": rle(8, 8)["counts"]}))),
    Case("coco-rle-wrong-size", "H2", coco_case(ann(segmentation=rle(16, 16)))),
    Case("coco-rle-counts-number", "H2", coco_case(ann(segmentation={"size": [32, 32], "counts": 5}))),
    Case("coco-uncompressed-negative", "H2", coco_case(ann(segmentation={"size": [32, 32],
                                                                          "counts": [-100, 1124]}))),
    Case("coco-uncompressed-strings", "H2", coco_case(ann(segmentation={"size": [32, 32], "counts": ["a", "b"]}))),
    Case("coco-polygon-strings", "H2", coco_case(ann(segmentation=[["a", "b", "c", "d", "e", "f"]]))),
    Case("coco-polygon-too-short", "H2", coco_case(ann(segmentation=[[1, 2, 3]]))),
    Case("coco-segmentation-string", "H2", coco_case(ann(segmentation="a square"))),
    Case("coco-width-string", "H2", coco_case(image_entry(width="wide"))),
    Case("coco-width-negative", "H2", coco_case(image_entry(width=-32))),
    Case("coco-width-huge", "H2", coco_case(image_entry(width=10**6, height=10**6))),
    Case("coco-width-disagrees", "H2", coco_case(image_entry(width=64, height=48))),
    Case("coco-image-id-string", "H2", coco_case(image_entry(id="first"))),
    Case("coco-image-no-file-name", "H2", coco_case(lambda d: d["images"][0].pop("file_name") and None)),
    Case("coco-file-name-number", "H2", coco_case(image_entry(file_name=5))),
    Case("coco-duplicate-image-ids", "H2", coco_case(lambda d: d["images"][1].update(id=1))),
    Case("coco-unknown-category", "H2", coco_case(ann(category_id=99))),
    Case("coco-unknown-image-id", "H2", coco_case(ann(image_id=99))),
    Case("coco-nan-bbox", "H2", coco_case(raw=NAN_BBOX_JSON)),
    Case("coco-infinite-bbox", "H2", coco_case(raw=NAN_BBOX_JSON.replace("NaN", "Infinity"))),
    Case("coco-negative-bbox", "H2", coco_case(ann(segmentation=None, bbox=[4, 4, -10, -10]))),
    Case("coco-file-name-escapes", "H2", coco_case(image_entry(file_name="../outside.png"),
                                                   images={"../outside.png": (32, 32), "b.png": (32, 32)})),
    Case("coco-file-name-absolute", "H2", coco_absolute_file_name),
    Case("coco-missing-images", "H2", coco_case(images={"a.png": (32, 32)}), names=("b.png",)),
    Case("coco-missing-image-line-break", "lead", coco_case(image_entry(file_name="gone\nfor good.png")),
         names=("for good.png",)),
    Case("coco-images-dir-missing", "H2", lambda c: [*coco_case()(c), "--images", str(c.dir / "nope")],
         names=("nope",)),

    # COCO results files (eval --gt --pred)
    Case("res-not-json", "H2", results_case(raw="{{{")),
    Case("res-not-list", "H2", results_case({"image_id": 1})),
    Case("res-empty-list", "H2", results_case([])),
    Case("res-entry-not-object", "H2", results_case([5])),
    Case("res-missing-score", "H2", results_case(result(score=DROP))),
    Case("res-score-string", "H2", results_case(result(score="high"))),
    Case("res-nan-score", "H2", results_case(raw=json.dumps(result()).replace("0.9", "NaN"))),
    Case("res-bad-image-id", "H2", results_case(result(image_id=999))),
    Case("res-bad-segmentation", "H2", results_case(result(segmentation="a square"))),
    Case("res-rle-garbage", "H2", results_case(result(segmentation={"size": [32, 32], "counts": "\x7f~~garbage"}))),
    Case("res-rle-wrong-size", "H2", results_case(result(segmentation=rle(8, 8)))),
    Case("res-gt-broken", "H2", lambda c: ["eval", "--gt", str(c.write(".json", "[]")), "--pred",
                                           str(c.write(".pred.json", json.dumps(result())))]),

    # weights (infer --weights)
    Case("w-string-tensor", "H1", weights_case(string_tensor)),
    Case("w-wrong-class-count", "H1", weights_case(wrong_class_count)),
    Case("w-pickle-code-pkl", "H1", weights_case(lambda c: c.write(".pkl", evil_pickle(c)))),
    Case("w-pickle-code-pth", "H1", weights_case(lambda c: c.write(".pth", evil_pickle(c)))),
    Case("w-truncated", "H1", weights_case(truncated_weights)),
    Case("w-empty", "H1", weights_case(lambda c: c.write(".pth", b""))),
    Case("w-not-a-dict", "H1", weights_case(lambda c: torch_save(c, [1, 2, 3]))),
    Case("w-missing", "H1", weights_case(lambda c: c.path(".pth"))),
    Case("w-directory", "H1", weights_case(lambda c: (c.dir / f"{c.id}.pth").mkdir(parents=True)
                                           or c.dir / f"{c.id}.pth")),
    Case("w-resume-booby-trap", "H1", resume_booby_trap, names=("model_0000000",)),

    # configs (--model / --base)
    Case("cfg-python-tag", "H1", config_case(yaml_file(evil_yaml))),
    Case("cfg-python-tag-in-base", "H1", config_case(base_chain), names=("evil-base.yaml",)),
    Case("cfg-python-tag-model-dir", "H1", config_case(evil_model_dir)),
    Case("cfg-python-tag-train", "H1", config_case(yaml_file(evil_yaml), command="train")),
    Case("cfg-invalid-yaml", "H1", config_case(yaml_file("MODEL: [unclosed\n"))),
    Case("cfg-unknown-key", "H1", config_case(yaml_file("MODEL:\n  NOT_A_KEY: 1\n"))),
    Case("cfg-not-a-mapping", "H1", config_case(yaml_file("- a\n- b\n"))),
    Case("cfg-empty", "H1", config_case(yaml_file(""))),
    Case("cfg-base-missing", "H1", config_case(yaml_file("_BASE_: nope-missing.yaml\n")), names=("nope-missing",)),
    Case("cfg-base-loop", "H1", config_case(base_loop)),
    Case("cfg-unknown-model", "H1", args("infer", BASE, "--model", "{id}")),

    # arguments
    Case("arg-infer-batch-0", "H1", infer("--batch-size", "0"), names=("--batch-size",)),
    Case("arg-infer-batch-negative", "H1", infer("--batch-size", "-3"), names=("--batch-size",)),
    Case("arg-infer-batch-text", "H1", infer("--batch-size", "many"), names=("--batch-size",)),
    Case("arg-infer-score-negative", "H1", infer("--score-thresh", "-1"), names=("--score-thresh",)),
    Case("arg-infer-nms-above-1", "H1", infer("--nms-thresh", "2"), names=("--nms-thresh",)),
    Case("arg-infer-max-dets-0", "H1", infer("--max-dets", "0"), names=("--max-dets",)),
    Case("arg-infer-device", "H1", infer("--device", "tpu"), names=("tpu",)),
    Case("arg-infer-shard-out-of-range", "H5", infer("--shard", "2/2"), names=("--shard", "2/2")),
    Case("arg-infer-shard-text", "H5", infer("--shard", "half"), names=("--shard", "half")),
    Case("arg-infer-machine-rank", "H5", infer("--num-machines", "2", "--machine-rank", "2", "--dist-url",
                                               "tcp://127.0.0.1:9"), names=("--machine-rank",)),
    Case("arg-train-machines-auto-url", "H5", train("--num-machines", "2"), names=("--dist-url",)),
    Case("arg-train-batch-0", "H1", train("--batch", "0"), names=("--batch",)),
    Case("arg-train-lr-negative", "H1", train("--lr", "-1"), names=("--lr",)),
    Case("arg-train-iters-negative", "H1", args("train", BASE, "--out", "{d}/model-out", "--iters", "-5"),
         names=("--iters",)),
    Case("arg-train-holdout", "H1", train("--holdout", "1.5"), names=("--holdout",)),
    Case("arg-train-log-period-0", "H1", train("--log-period", "0"), names=("--log-period",)),
    Case("arg-train-checkpoint-period-0", "H1", train("--checkpoint-period", "0"), names=("--checkpoint-period",)),
    Case("arg-train-opts-odd", "H1", train("--opts", "SOLVER.BASE_LR"), names=("SOLVER.BASE_LR",)),
    Case("arg-train-opts-unknown-key", "H1", train("--opts", "SOLVER.NOT_A_KEY", "1"), names=("SOLVER.NOT_A_KEY",)),
    Case("arg-train-opts-bad-value", "H1", train("--opts", "SOLVER.MAX_ITER", "lots"), names=("SOLVER.MAX_ITER",)),
    Case("arg-demo-n-0", "H1", args("demo-data", "--out", "{d}/demo", "--n", "0"), names=("--n",)),
    Case("arg-demo-n-negative", "H1", args("demo-data", "--out", "{d}/demo", "--n", "-5"), names=("--n",)),
    Case("arg-demo-size-0", "H1", args("demo-data", "--out", "{d}/demo", "--n", "1", "--size", "0"),
         names=("--size",)),
    Case("arg-demo-size-huge", "H1", args("demo-data", "--out", "{d}/demo", "--n", "1", "--size", "100000"),
         names=("--size",)),
    Case("arg-demo-out-file", "H1", args("demo-data", "--out", "{file}", "--n", "1")),
    Case("arg-explain-out-file", "H1", args("explain", "{png}", "--out", "{file}", "--device", "cpu")),
    Case("arg-explain-level", "H1", args("explain", "{png}", "--out", "{d}/x", "--level", "p9", "--device", "cpu"),
         names=("p9",)),
    Case("arg-eval-iou-thresh", "H1", args("eval", BASE, "--iou-thresh", "1.5", "--eval-key", "none"),
         names=("--iou-thresh",)),
    Case("arg-unknown-command", "H1", args("frobnicate"), names=("frobnicate",)),
    Case("arg-import-no-source", "H1", args("import"), names=("source",)),
    Case("arg-unknown-option", "H1", args("import", "{png}", "--frobnicate"), names=("--frobnicate",)),
    Case("arg-missing-value", "H1", args("--database-uri"), names=("--database-uri",)),
    Case("arg-bad-choice", "H1", args("eval", BASE, "--iou-type", "polygon"), names=("polygon",)),
    Case("arg-export-format", "H1", args("export", BASE, "--format", "yolo", "--out", "{d}/out"), names=("yolo",)),
    Case("arg-infer-missing-source", "H1", args("infer", "{d}/{id}-nowhere"), names=("nowhere",)),
    Case("arg-import-name-taken", "H2", args("import", "{png}", "--name", BASE), names=(BASE,)),
    Case("arg-images-is-a-file", "H2", lambda c: [*coco_case()(c), "--images", str(c.write(".txt", "a file\n"))]),
    Case("arg-train-view-tags-match-nothing", "H1", train("--view-tags", "no-such-tag"), names=("no-such-tag",)),
    Case("arg-infer-tags-match-nothing", "H1", infer("--tags", "no-such-tag"), names=("no-such-tag",)),
    Case("arg-explain-instance", "H1", args("explain", "{png}", "--out", "{d}/x", "--instance", "-1"),
         names=("--instance",)),
    Case("arg-explain-top-k", "H1", args("explain", "{png}", "--out", "{d}/x", "--top-k", "0"), names=("--top-k",)),
    Case("arg-demo-seed-negative", "H1", args("demo-data", "--out", "{d}/demo", "--seed", "-1"), names=("--seed",)),
    Case("arg-eval-gt-without-pred", "H1", lambda c: ["eval", "--gt", str(c.shared.good_json)], names=("--pred",)),
    Case("arg-max-pixels-0", "H2", args("import", "{png}", "--max-pixels", "0"), names=("--max-pixels",)),
    Case("arg-max-pixels-text", "H2", args("import", "{png}", "--max-pixels", "lots"), names=("--max-pixels",)),
    Case("img-over-max-pixels", "H2", args("import", "{png}", "--max-pixels", "100"), names=("good.png",)),

    # eval keys that would overwrite what reviewers own
    Case("key-tags", "H4", args("eval", BASE, "--eval-key", "tags"), names=("tags",)),
    Case("key-label", "H4", args("eval", BASE, "--eval-key", "label"), names=("label",)),
    Case("key-mask", "H4", args("eval", BASE, "--eval-key", "mask"), names=("mask",)),
    Case("key-metadata", "H4", args("eval", BASE, "--eval-key", "metadata"), names=("metadata",)),
    Case("key-ground-truth", "H4", args("eval", BASE, "--eval-key", "ground_truth"), names=("ground_truth",)),
    Case("key-pred-field-missing", "H4", args("eval", BASE, "--pred-field", "no_such_field"),
         names=("no_such_field",)),
    Case("key-gt-field-not-detections", "H4", args("eval", BASE, "--gt-field", "filepath", "--eval-key", "none"),
         names=("filepath",)),
    Case("key-infer-field-metadata", "H6", infer("--field", "metadata"), names=("metadata",)),
    Case("key-infer-field-filepath", "H6", infer("--field", "filepath"), names=("filepath",)),
    Case("key-infer-field-ground-truth", "H6", infer("--field", "ground_truth"), names=("ground_truth",)),

    # export targets
    Case("export-out-is-file", "H2", export_case(lambda c: c.write(".txt", "a file\n"))),
    Case("export-out-not-empty", "H2", export_case(non_empty_folder)),
    Case("export-out-unwritable", "H2", export_case(lambda c: Path(f"/proc/{c.id}")), ),
    Case("export-out-under-file", "H2", export_case(lambda c: c.write(".txt", "a file\n") / "sub")),
    Case("export-tags-match-nothing", "H2", export_case(None, "--tags", "no-such-tag"), names=("no-such-tag",)),
    Case("export-label-tags-match-nothing", "H2", export_case(None, "--label-tags", "no-such-label-tag"),
         names=("no-such-label-tag",)),
    Case("export-field-missing", "H2", export_case(None, "--field", "no_such_field"), names=("no_such_field",)),
    Case("export-field-not-detections", "H2", export_case(None, "--field", "filepath"), names=("filepath",)),
    Case("export-second-field-missing", "H4", export_case(None, "--field", "ground_truth,no_such_field"),
         names=("no_such_field",)),
    Case("export-no-field-named", "H4", export_case(None, "--field", ","), names=("no label field",)),
    Case("export-name-collision", "H2", collide, names=(COLLIDE,)),

    # database faults
    Case("db-closed-port", "H1", args("--database-uri", f"mongodb://127.0.0.1:{CLOSED_PORT}", "import", "{png}"),
         names=(str(CLOSED_PORT),), isolated=True),
    Case("db-folder-is-a-file", "H1", args("import", "{png}"), isolated=True, names=("db-folder-is-a-file",),
         env=lambda c: {"FIFTYONE_DATABASE_DIR": str(c.write(".db", "a file, not a folder\n"))}),
    Case("db-bad-uri", "H1", args("--database-uri", "not-a-mongodb-uri", "import", "{png}"),
         names=("not-a-mongodb-uri",), isolated=True),

    # the same inputs as a real process (checks the in-process driver against the real thing)
    Case("proc-infer-batch-0", "H1", infer("--batch-size", "0"), names=("--batch-size",), isolated=True),
    Case("proc-w-pickle-code", "H1", weights_case(lambda c: c.write(".pkl", evil_pickle(c))), isolated=True),
    Case("proc-img-bomb", "H2", image_case(raw_file(png_bytes(60000, 60000))), isolated=True),
]


# A COCO or results row's message must also point at the entry (issue 12.3: the file, the entry, the problem).
ENTRY = {
    **dict.fromkeys(["coco-annotation-not-object", "coco-bbox-strings", "coco-bbox-not-list", "coco-rle-garbage",
                     "coco-rle-overlong", "coco-rle-short", "coco-rle-wrong-size", "coco-rle-counts-number",
                     "coco-uncompressed-negative", "coco-uncompressed-strings", "coco-polygon-strings",
                     "coco-polygon-too-short", "coco-segmentation-string", "coco-unknown-category",
                     "coco-unknown-image-id", "coco-nan-bbox", "coco-infinite-bbox", "coco-negative-bbox"],
                    "annotation 0"),
    **dict.fromkeys(["coco-image-not-object", "coco-width-string", "coco-width-negative", "coco-width-huge",
                     "coco-width-disagrees", "coco-image-id-string", "coco-image-no-file-name",
                     "coco-file-name-number", "coco-file-name-escapes", "coco-file-name-absolute"], "image 0"),
    "coco-category-not-object": "category 0",
    "coco-duplicate-image-ids": "id 1",
    **dict.fromkeys(["res-entry-not-object", "res-missing-score", "res-score-string", "res-nan-score",
                     "res-bad-segmentation", "res-rle-garbage", "res-rle-wrong-size"], "result 0"),
}


# --------------------------------------------------------------------------------------------
# running them
# --------------------------------------------------------------------------------------------

def _make_shared(root: Path) -> Shared:
    shared_dir = root / "shared"
    write_png(shared_dir / "images" / "a.png")
    write_png(shared_dir / "images" / "b.png", color=(20, 200, 40))
    good_json = shared_dir / "annotations.json"
    good_json.write_text(json.dumps(good_coco()))
    good_png = write_png(shared_dir / "good.png")
    return Shared(root, good_png, good_json)


def _make_datasets(fo, shared: Shared) -> None:
    from maskreview.core.sources import open_source

    base = open_source(shared.good_json, name=BASE)
    base.clone_sample_field("ground_truth", "predictions")
    for sample in base:
        for det in sample.predictions.detections:
            det.confidence = 0.9
        sample.save()
    base.clone(COLLIDE, persistent=True)


def _cannot_run(case: Case) -> str | None:
    if case.id == "img-unreadable" and os.geteuid() == 0:
        return "root reads files whatever their permissions"
    return None


def _selected(session) -> list[Case]:
    wanted = {item.callspec.params["case"].id for item in session.items
              if getattr(item, "originalname", "") == "test_bad_input" and hasattr(item, "callspec")}
    return [case for case in CASES if case.id in wanted and not _cannot_run(case)]


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory, fo):
    root = tmp_path_factory.mktemp("catalogue")
    before = set(fo.list_datasets())
    shared = _make_shared(root)
    _make_datasets(fo, shared)
    specs = []
    for case in _selected(request.session):
        case_dir = CaseDir(case.id, root / "cases" / case.id, shared)
        case_dir.dir.mkdir(parents=True, exist_ok=True)
        argv = case.build(case_dir)
        specs.append({"id": case.id, "argv": argv, "cwd": str(case_dir.dir), "isolated": case.isolated,
                      "env": case.env(case_dir) if case.env else None,
                      "watch": [str(root), os.environ["MASKREVIEW_DATA_DIR"]]})
    results = run_driver(specs, root)
    yield {"results": results, "specs": {s["id"]: s for s in specs}, "root": root}
    for name in set(fo.list_datasets()) - before:  # ours, and any a failing row left behind
        fo.delete_dataset(name)


def _explain(case: Case, spec: dict, r: dict) -> str:
    return (f"\n[{case.id}, owner {case.owner}] maskreview {' '.join(spec['argv'])}\n"
            f"exit {r['rc']} after {r['seconds']} s\n--- stderr:\n{r['stderr'][-3000:]}\n"
            f"--- stdout:\n{r['stdout'][-1000:]}\n--- datasets added {r['datasets_added']}, removed "
            f"{r['datasets_removed']}; database {r['database']}\n--- files {r['files']}")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, outcomes):
    if _cannot_run(case):
        pytest.skip(_cannot_run(case))
    spec, r = outcomes["specs"][case.id], outcomes["results"][case.id]
    why = _explain(case, spec, r)
    assert not CaseDir(case.id, Path(spec["cwd"]), None).marker.exists(), "a crafted file ran code" + why
    assert "Traceback" not in r["stderr"] + r["stdout"], why
    assert r["rc"] == 2, why
    lines = [line for line in r["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1, why
    assert lines[0].startswith("maskreview") and ": error: " in lines[0], why
    assert any(name in lines[0] for name in (case.names or (case.id,))), why
    assert ENTRY.get(case.id, "") in lines[0], f"the message does not point at {ENTRY[case.id]!r}" + why
    assert not r["datasets_added"] and not r["datasets_removed"], why
    assert not any(r["database"].values()), why
    assert not any(r["files"].values()), why


_DRIVER_CHECK = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import helpers_catalogue as h
from maskreview import cli
from maskreview.core.errors import BadInputError

def crash(args):
    raise ZeroDivisionError("escaped main")

def refuse(args):
    os.write(2, b"from C\\n")
    raise BadInputError("refused.png: refused")

out = {}
cli.cmd_models = crash
out["crash"] = h.run_in_process(["models"])
cli.cmd_models = refuse
out["refuse"] = h.run_in_process(["models"])
out["argparse"] = h.run_in_process(["--no-such-option"])
print(json.dumps(out))
"""


def test_driver_shows_what_escapes_main():
    """The driver must not hide a traceback, a stray stderr line or argparse's exit code."""
    proc = subprocess.run([sys.executable, "-c", _DRIVER_CHECK, str(Path(__file__).parent)], capture_output=True,
                          text=True, timeout=120, cwd=REPO, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    rc, _, err = out["crash"]
    assert rc == 1 and "Traceback" in err and "ZeroDivisionError: escaped main" in err
    rc, _, err = out["refuse"]
    assert rc == 2 and err.splitlines() == ["from C", "maskreview: error: refused.png: refused"]
    rc, _, err = out["argparse"]
    assert rc == 2 and "--no-such-option" in err


def test_catalogue_table():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) >= 60
    assert set(ENTRY) <= set(ids)
