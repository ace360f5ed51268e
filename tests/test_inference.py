"""The engine on detectron2 (CPU, a random-init demo-architecture model) and batch runs over datasets."""

import json
import os
import shutil
import threading

import numpy as np
import pytest
import torch

from conftest import run_cli

from maskreview.core import masks as mk
from maskreview.core.editing.labels import as_detection
from maskreview.core.errors import BadInputError, CancelledError, MaskreviewError
from maskreview.core.images import read_image
from maskreview.core.model.engine import Engine, EngineSettings, box_mask_detection
from maskreview.core.model.provenance import RUNS_INFO_KEY
from maskreview.core.model import runs as runs_module
from maskreview.core.model.runs import prefetched, run_inference
from maskreview.core.progress import Progress

# random weights score every class about equally: a low threshold gives detections to check
SETTINGS = EngineSettings(device="cpu", score_thresh=0.05, max_detections=8)


@pytest.fixture(scope="module")
def engine(tiny_model):
    return Engine(str(tiny_model), settings=SETTINGS)


@pytest.fixture
def dataset(fo, demo_coco):
    from maskreview.core.sources import open_source

    return open_source(demo_coco, name="infer-test")


class CancelAfter(Progress):
    def __init__(self, n):
        super().__init__()
        self.n = n

    def on_update(self):
        if self.done >= self.n:
            self.cancel()


# ------------------------------------------------------------------------------ the engine

def test_engine_predicts_detections_with_exact_box_masks(engine, demo_coco):
    assert engine.classes == ["circle", "square", "triangle", "ring", "cross"]
    assert engine.device == "cpu" and engine.has_masks and len(engine.weights_sha256) == 64
    image = read_image(next((demo_coco.parent / "images").glob("*.png")))
    height, width = image.shape[:2]
    instances = engine.predict_instances([image])[0]
    assert 0 < len(instances) <= SETTINGS.max_detections
    assert float(instances.scores.min()) >= SETTINGS.score_thresh
    detections = engine.to_detections(instances).detections
    assert len(detections) == len(instances)
    for det, box, full, label in zip(detections, instances.pred_boxes.tensor.numpy(),
                                     instances.pred_masks.numpy(), instances.pred_classes.numpy()):
        assert det.label == engine.classes[label]
        np.testing.assert_array_equal(mk.detection_to_bitmap(det, height, width), full)  # exact round trip
        x0, y0, x1, y1 = box
        if full[:, :].any():
            ys, xs = np.nonzero(full)
            if xs.min() >= round(x0) and ys.min() >= round(y0):
                assert det.bounding_box == pytest.approx([x0 / width, y0 / height, (x1 - x0) / width,
                                                          (y1 - y0) / height])
    assert engine.predict(image).detections[0].label == detections[0].label


def _random_boxes(rng, h, w, n, kind):
    """XYXY boxes inside an ``h x w`` image: sub-pixel, at the edges, on half pixels, or any."""
    x0, y0 = rng.uniform(0, w, n), rng.uniform(0, h, n)
    if kind == "sub-pixel":
        bw, bh = rng.uniform(0.01, 1.5, n), rng.uniform(0.01, 1.5, n)
    elif kind == "edge":
        x0, y0 = rng.choice([0.0, w - 3.2, w - 0.4, 0.6], n), rng.choice([0.0, h - 0.7, h - 1.0, 0.25], n)
        bw, bh = rng.uniform(0.1, w, n), rng.uniform(0.1, h, n)
    else:
        bw, bh = rng.uniform(0.5, w, n), rng.uniform(0.5, h, n)
    boxes = np.stack([x0, y0, np.minimum(x0 + bw, w), np.minimum(y0 + bh, h)], 1)
    if kind == "half-pixel":  # pixel centres exactly on the box's edges
        boxes = np.round(boxes * 2) / 2
    boxes[:, :2] = np.clip(boxes[:, :2], 0, None)
    return boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]


def test_box_local_paste_sets_every_pixel_as_detectron2s_full_image_paste():
    """``postprocess.paste_box_masks`` (each mask into its box's window only, batched) against
    detectron2's own ``paste_masks_in_image``: not one pixel may differ, on many random boxes,
    boxes at the image's edges, sub-pixel boxes and boxes on half pixels; soft masks and
    saturated 0/1 ones (values of exactly 0.5 at their edges)."""
    from detectron2.layers.mask_ops import paste_masks_in_image

    from maskreview.core.model.postprocess import box_windows, paste_box_masks

    rng = np.random.default_rng(7)
    torch.manual_seed(7)
    checked = 0
    for trial in range(160):
        h, w = int(rng.integers(1, 200)), int(rng.integers(1, 200))
        kind = ("sub-pixel", "edge", "half-pixel", "any")[trial % 4]
        boxes = _random_boxes(rng, h, w, int(rng.integers(1, 30)), kind)
        if not len(boxes):
            continue
        probs = torch.rand(len(boxes), 28, 28)
        if trial % 3 == 0:
            probs = (probs > 0.3).float()
        boxes_t = torch.as_tensor(boxes, dtype=torch.float32)
        full = paste_masks_in_image(probs, boxes_t, (h, w)).numpy()
        windows = box_windows(boxes_t.numpy(), h, w)
        for i, (x0, y0, part) in enumerate(paste_box_masks(probs, boxes_t, h, w)):
            assert (x0, y0, x0 + part.shape[1], y0 + part.shape[0]) == tuple(windows[i])
            np.testing.assert_array_equal(mk.paste(x0, y0, part, h, w), full[i], err_msg=f"{kind} box {boxes[i]}")
            checked += 1
    assert checked > 1000


def test_run_documents_are_detectron2s_predictions_pixel_for_pixel(engine, tiny_model, demo_coco):
    """What a dataset run writes (``Engine.predict_docs``: no full-image masks, no ``fo.Detection``)
    equals detectron2's own output through ``to_detections``: labels, boxes, scores, and every
    mask pixel of detectron2's full-image paste."""
    many = Engine(str(tiny_model), settings=EngineSettings(
        device="cpu", score_thresh=0.0, max_detections=100))  # every size of box the model makes
    for path in sorted((demo_coco.parent / "images").glob("*.png"))[:4]:
        image = read_image(path)
        for eng in (engine, many):
            instances = eng.predict_instances([image])[0]
            docs, height, width = eng.predict_docs([image])[0]
            assert (height, width) == image.shape[:2] and len(docs) == len(instances) > 0
            expected = [d.to_mongo() for d in eng.to_detections(instances).detections]
            for doc, want, full in zip(docs, expected, instances.pred_masks.numpy()):
                assert list(doc) == list(want)  # the same keys in the same order
                assert (doc["_cls"], doc["label"], doc["bounding_box"], doc["attributes"], doc["tags"]) == (
                    want["_cls"], want["label"], want["bounding_box"], want["attributes"], want["tags"])
                assert doc["confidence"] == want["confidence"]
                det = as_detection(doc)
                np.testing.assert_array_equal(det.mask, as_detection(want).mask)
                np.testing.assert_array_equal(mk.detection_to_bitmap(det, height, width), full)


def test_box_mask_detection_keeps_the_box_and_grows_it_for_stray_pixels(fo):
    full = np.zeros((20, 30), bool)
    full[5:9, 10:14] = True
    det = box_mask_detection(full, [9.6, 4.7, 14.2, 9.4], "a")
    assert det.bounding_box == pytest.approx([9.6 / 30, 4.7 / 20, 4.6 / 30, 4.7 / 20])
    assert det.mask.shape == (4, 4)
    np.testing.assert_array_equal(mk.detection_to_bitmap(det, 20, 30), full)
    full[15, 25] = True  # outside the predicted box
    det = box_mask_detection(full, [9.6, 4.7, 14.2, 9.4], "a")
    np.testing.assert_array_equal(mk.detection_to_bitmap(det, 20, 30), full)
    empty = box_mask_detection(np.zeros((20, 30), bool), [2, 2, 5, 6], "b")
    assert empty.mask.shape == (4, 3) and not empty.mask.any()


def test_run_key_follows_model_and_thresholds(tiny_model, engine):
    other = Engine(str(tiny_model), settings=EngineSettings(device="cpu", score_thresh=0.3, max_detections=8))
    assert other.run_key != engine.run_key
    assert Engine(str(tiny_model), settings=SETTINGS).run_key == engine.run_key


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is absent")
def test_cuda_asked_for_but_absent(tiny_model):
    with pytest.raises(MaskreviewError, match=r"CUDA was asked for \(--device cuda\).*no CUDA GPU"):
        Engine(str(tiny_model), settings=EngineSettings(device="cuda"))
    with pytest.raises(BadInputError, match="unknown device"):
        Engine(str(tiny_model), settings=EngineSettings(device="tpu"))


def _model_copy(tiny_model, tmp_path, config_edit=None, classes=None, weights=None):
    out = tmp_path / "model"
    shutil.copytree(tiny_model, out)
    if config_edit:
        text = (out / "config.yaml").read_text()
        old, new = config_edit
        assert old in text
        (out / "config.yaml").write_text(text.replace(old, new))
    if classes is not None:
        (out / "classes.json").write_text(json.dumps(classes))
    if weights is not None:
        (out / "model_final.pth").write_bytes(weights)
    return out


@pytest.mark.parametrize("edit,fragment", [
    (dict(config_edit=("MODEL:", "MODEL: [unclosed")), "not a usable detectron2 config"),
    (dict(config_edit=("  ROI_HEADS:\n", "  ROI_HEADS:\n    NO_SUCH_KEY: 1\n")), "not a usable detectron2 config"),
    (dict(config_edit=("NUM_CLASSES: 5", "NUM_CLASSES: 3"), classes=["a", "b", "c"]),
     "class-count mismatch: the config has 3 classes, the weights have 5"),
    (dict(classes=["a", "b"]), "class-count mismatch: the config has 5 classes, classes.json names 2"),
    (dict(config_edit=("OUT_CHANNELS: 128", "OUT_CHANNELS: 64")), "does not fit the config"),
    (dict(weights=b"PK\x03\x04 truncated zip"), "corrupt or not a checkpoint"),
])
def test_bad_model_inputs_fail_before_anything_runs(tiny_model, tmp_path, edit, fragment):
    model = _model_copy(tiny_model, tmp_path, **edit)
    with pytest.raises(BadInputError, match=fragment) as err:
        Engine(str(model), settings=SETTINGS)
    assert "\n" not in str(err.value)


def test_missing_weights(tiny_model, tmp_path):
    model = _model_copy(tiny_model, tmp_path)
    (model / "model_final.pth").unlink()
    with pytest.raises(BadInputError, match="no weights; pass --weights PATH"):
        Engine(str(model), settings=SETTINGS)
    with pytest.raises(BadInputError, match="weights file not found"):
        Engine(str(model), weights=str(tmp_path / "nope.pth"), settings=SETTINGS)
    assert Engine(str(model), weights=str(tiny_model / "model_final.pth"), settings=SETTINGS).classes


def test_weights_from_a_url_go_through_the_cache(tiny_model):
    from maskreview.core.model.registry import file_sha256, weights_cache_dir

    source = tiny_model / "model_final.pth"
    engine = Engine(str(tiny_model), weights=source.as_uri(), settings=SETTINGS)
    assert engine.weights.startswith(str(weights_cache_dir()))
    assert engine.weights_sha256 == file_sha256(source)
    with pytest.raises(MaskreviewError, match=r"http://127.0.0.1:9/w.pth.*--weights PATH"):
        Engine(str(tiny_model), weights="http://127.0.0.1:9/w.pth", settings=SETTINGS)


# ------------------------------------------------------------------------------ prefetch

def test_prefetch_decodes_ahead_on_threads_and_keeps_order():
    decoded = {i: threading.Event() for i in range(6)}
    threads = set()

    def decode(i):
        threads.add(threading.current_thread().name)
        if i == 0:  # item 0 only finishes once item 1 is decoded: proves they run at once
            assert decoded[1].wait(10)
        decoded[i].set()
        return i * 10

    stream = prefetched(range(6), workers=2, depth=3, decode=decode)
    first = next(stream)
    assert first == (0, 0)
    # while the consumer holds item 0 (the model's turn), the next items decode
    assert decoded[2].wait(10) and decoded[3].wait(10)
    assert [item for item in stream] == [(i, i * 10) for i in range(1, 6)]
    assert threads and all(name.startswith("decode") for name in threads)


def test_prefetch_without_threads_decodes_each_when_asked_on_the_callers_thread():
    asked, threads = [], set()

    def decode(i):
        asked.append(i)
        threads.add(threading.current_thread().name)
        return ValueError(i) if i == 2 else i * 10

    stream = prefetched(range(4), workers=0, decode=decode)
    assert next(stream) == (0, 0) and asked == [0]  # nothing decoded ahead of the model
    rest = list(stream)
    assert [p for p, _ in rest] == [1, 2, 3] and rest[0][1] == 10 and isinstance(rest[1][1], ValueError)
    assert threads == {threading.current_thread().name}


def test_decode_threads_none_when_the_model_takes_every_core_on_the_cpu(engine):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(os.cpu_count() or 1)
        assert runs_module.decode_threads(engine) == 0
        if (os.cpu_count() or 1) > 1:
            torch.set_num_threads((os.cpu_count() or 2) - 1)
            assert runs_module.decode_threads(engine) == 2
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------ batch runs

def test_run_writes_detections_records_and_resumes(dataset, engine):
    report = run_inference(dataset, engine, write_every=5)
    assert (report.predicted, report.skipped, report.failures, report.cancelled) == (12, 0, [], False)
    dataset.reload()
    info = dataset.info[RUNS_INFO_KEY]["predictions"]
    assert info["model"] == engine.spec.name and info["weights_sha256"] == engine.weights_sha256
    assert info["score_thresh"] == 0.05 and info["run_key"] == engine.run_key and info["predicted"] == 12
    assert dataset.values("predictions_run") == [engine.run_key] * 12
    for sample in dataset:
        dets = sample.predictions.detections
        assert 0 < len(dets) <= 8
        h, w = sample.metadata.height, sample.metadata.width
        for det in dets:
            x0, y0, _, _ = mk.detection_pixel_box(det, h, w)
            assert det.mask.dtype == bool and det.mask.ndim == 2 and det.confidence >= 0.05
            assert (x0, y0) == (mk.round_half_up(det.bounding_box[0] * w), mk.round_half_up(det.bounding_box[1] * h))
    again = run_inference(dataset.view(), engine)
    assert (again.predicted, again.skipped) == (0, 12)
    redo = run_inference(dataset.limit(4), engine, overwrite=True)
    assert (redo.predicted, redo.skipped) == (4, 0)


def test_a_batched_run_writes_what_one_by_one_writes(dataset, engine):
    """Several images per forward pass (the default on a GPU) must not change a single label."""
    assert engine.batch_size == 1  # CPU: one at a time
    run_inference(dataset, engine, field="single")
    run_inference(dataset, engine, field="batched", batch_size=5)  # 12 images: batches of 5, 5, 2
    dataset.reload()
    for sample in dataset:
        one, many = sample.single.detections, sample.batched.detections
        assert len(one) > 0 and len(one) == len(many)
        for a, b in zip(one, many):
            assert (a.label, a.bounding_box) == (b.label, b.bounding_box)
            assert np.array_equal(a.mask, b.mask) and a.confidence == pytest.approx(b.confidence, abs=1e-5)


def test_a_run_in_lanes_writes_what_one_by_one_writes_and_gives_torch_its_threads_back(dataset, engine):
    """Two images predicted at once on threads, one torch thread each (the model worker on the
    CPU): the same labels, in the same samples, as one pass after another."""
    before = torch.get_num_threads()
    seen = []
    predict = engine.predict_docs

    def watching(images):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return predict(images)

    try:
        torch.set_num_threads(1)
        run_inference(dataset, engine, field="single")
        torch.set_num_threads(2)
        engine.predict_docs = watching
        report = run_inference(dataset, engine, field="lanes", lanes=2, write_every=5)
        assert torch.get_num_threads() == 2  # given back
    finally:
        del engine.predict_docs
        torch.set_num_threads(before)
    assert (report.predicted, report.failures) == (12, [])
    assert len(seen) == 12 and {threads for _, threads in seen} == {1}
    assert all(name.startswith("lane") for name, _ in seen) and len({name for name, _ in seen}) == 2
    _assert_same_labels(dataset, "single", "lanes")


def test_a_run_in_lanes_cancels_keeping_what_it_wrote_and_skips_bad_images(fo, demo_coco, tmp_path, engine):
    dataset, bad = _with_a_broken_image(demo_coco, tmp_path, "infer-lanes-bad-image", 1, b"not an image")
    before = torch.get_num_threads()
    with pytest.raises(CancelledError):
        run_inference(dataset, engine, progress=CancelAfter(5), write_every=100, lanes=2)
    assert torch.get_num_threads() == before
    written = dataset.values("predictions_run")
    assert written[1] is None and 4 <= sum(k == engine.run_key for k in written) < 11
    rest = run_inference(dataset, engine, lanes=2)
    assert rest.predicted + rest.skipped == 11 and len(rest.failures) == 1 and bad in rest.failures[0]
    with pytest.raises(ValueError, match="lanes"):
        run_inference(dataset, engine, lanes=2, before_image=lambda: None)


def test_cancel_keeps_what_was_written_and_rerun_completes(dataset, engine):
    with pytest.raises(CancelledError):
        run_inference(dataset, engine, progress=CancelAfter(3), write_every=100)
    done = sum(1 for key in dataset.values("predictions_run") if key == engine.run_key)
    assert 3 <= done < 12
    assert dataset.info[RUNS_INFO_KEY]["predictions"]["cancelled"] is True
    assert len(dataset.exists("predictions")) == done
    rest = run_inference(dataset, engine)
    assert (rest.predicted, rest.skipped) == (12 - done, done)


def _with_a_broken_image(demo_coco, tmp_path, name, index, content):
    """A copy of the demo dataset whose ``index``-th image file holds ``content``: (dataset, its path)."""
    from maskreview.core.sources import open_source

    data = tmp_path / "data"
    shutil.copytree(demo_coco.parent, data)
    dataset = open_source(data / demo_coco.name, name=name)
    bad = dataset.values("filepath")[index]
    with open(bad, "wb") as f:
        f.write(content)
    return dataset, bad


def test_undecodable_image_mid_batch_is_skipped_and_reported(fo, demo_coco, tmp_path, engine):
    dataset, bad = _with_a_broken_image(demo_coco, tmp_path, "infer-bad-image", 5, b"\x89PNG\r\n\x1a\n not really")
    report = run_inference(dataset, engine)
    assert report.predicted == 11 and len(report.failures) == 1 and bad in report.failures[0]
    written = dataset.values("predictions_run")
    assert written[5] is None and all(k == engine.run_key for i, k in enumerate(written) if i != 5)
    assert written[6] == engine.run_key  # the run went on past it
    assert dataset.info[RUNS_INFO_KEY]["predictions"]["failed"] == 1


def test_refuses_to_overwrite_labels_a_model_did_not_write(dataset, engine):
    with pytest.raises(BadInputError, match="no model run wrote"):
        run_inference(dataset, engine, field="ground_truth")
    with pytest.raises(BadInputError, match="letters, digits and underscores"):
        run_inference(dataset, engine, field="bad name")
    assert "predictions" not in dataset.get_field_schema()


# ------------------------------------------------------------------------------ the command

def test_cli_infer_then_rerun_skips(fo, demo_coco, tiny_model):
    args = ("infer", str(demo_coco), "--model", str(tiny_model), "--device", "cpu", "--score-thresh", "0.05",
            "--max-dets", "5", "--field", "pred_cli")
    out = run_cli(*args, check=True, timeout=900).stdout
    assert "predicted 12 samples into 'pred_cli'" in out and "0 failed" in out
    name = out.split(":")[0]
    dataset = fo.load_dataset(name)
    counts = [len(d.detections) for d in dataset.values("pred_cli")]
    assert all(0 < c <= 5 for c in counts)
    assert dataset.info[RUNS_INFO_KEY]["pred_cli"]["max_detections"] == 5
    out = run_cli(*args, check=True, timeout=900).stdout
    assert "predicted 0 samples" in out and "skipped 12 already done" in out


@pytest.mark.parametrize("extra,fragment", [
    (("--weights", "TRAP"), "refusing"),
    (("--device", "cuda"), "CUDA was asked for"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(fo, demo_coco, tiny_model, tmp_path, extra, fragment):
    if extra[0] == "--device" and torch.cuda.is_available():
        pytest.skip("CUDA is present")
    import pickle

    marker = tmp_path / "pwned"
    trap = tmp_path / "trap.pkl"
    trap.write_bytes(pickle.dumps({"model": {}, "__author__": "x", "x": _Trap(str(marker))}))
    extra = tuple(str(trap) if a == "TRAP" else a for a in extra)
    before = set(fo.list_datasets())
    proc = run_cli("infer", str(demo_coco), "--model", str(tiny_model), *extra, timeout=900)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("maskreview")]
    assert len(lines) == 1 and lines[0].startswith("maskreview: error: ") and fragment in lines[0]
    assert "Traceback" not in proc.stderr
    new = set(fo.list_datasets()) - before
    assert not [n for n in new if n.startswith(demo_coco.stem)] and not marker.exists()  # nothing imported


class _Trap:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.path}",))


def test_gpu_batch_follows_the_cards_memory():
    """A GPU run batches 8 images a pass where the card holds them, 4 on a small one."""
    from maskreview.core.model.engine import gpu_batch

    assert gpu_batch(80 * 2**30) == 8
    assert gpu_batch(6 * 2**30) == 4


def test_a_run_resizes_on_its_decode_threads_and_makes_documents_beside_the_next_forward_pass(dataset, engine):
    """The CPU work around a forward pass (the resize to the test size, pasting and encoding the
    masks) runs off the run's own thread, so a GPU's passes follow each other; the labels are
    those of one image at a time on one thread."""
    seen = {"prepare": set(), "infer": set(), "documents": set()}

    def watch(name):
        method = getattr(engine, name)

        def watched(*args):
            seen[name].add(threading.current_thread().name)
            return method(*args)
        return watched

    run_inference(dataset, engine, field="one_thread", decode_workers=0)
    try:
        for name in seen:
            setattr(engine, name, watch(name))
        report = run_inference(dataset, engine, field="piped", batch_size=3, decode_workers=2, write_every=4)
    finally:
        for name in seen:
            engine.__dict__.pop(name, None)
    assert (report.predicted, report.failures) == (12, [])
    assert seen["infer"] == {threading.current_thread().name}
    assert seen["prepare"] and all(name.startswith("decode") for name in seen["prepare"])
    assert seen["documents"] and all(name.startswith("documents") for name in seen["documents"])
    _assert_same_labels(dataset, "one_thread", "piped")


def _assert_same_labels(dataset, field: str, other: str) -> None:
    """Every sample has labels in ``field``, and ``other`` holds the same ones, mask for mask."""
    dataset.reload()
    for sample in dataset:
        one, two = sample[field].detections, sample[other].detections
        assert len(one) > 0 and len(one) == len(two)
        for a, b in zip(one, two):
            assert (a.label, a.bounding_box, a.confidence) == (b.label, b.bounding_box, b.confidence)
            assert np.array_equal(a.mask, b.mask)
