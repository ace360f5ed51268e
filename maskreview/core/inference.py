"""The detectron2 engine: build a predictor, run it on images, run it over a dataset.

``Engine`` wraps a detectron2 model built from a :class:`~maskreview.core.models.ModelSpec`.
``run_inference`` runs it over a FiftyOne dataset or view: the next images are decoded on a
thread pool while the model works, results are written in bulk as ``fo.Detections`` with
box-relative masks, and samples already predicted by the same model and settings are skipped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from maskreview.core import masks as mk
from maskreview.core.errors import BadInputError, MaskreviewError
from maskreview.core.images import read_image
from maskreview.core.models import file_sha256, fetch_weights, make_checkpointer, resolve_model
from maskreview.core.progress import Progress
from maskreview.core.store import fiftyone

RUNS_INFO_KEY = "maskreview_runs"


@dataclass
class EngineSettings:
    device: str = "auto"
    score_thresh: float = 0.5
    nms_thresh: float = 0.5
    max_detections: int = 100


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MaskreviewError("CUDA was asked for (--device cuda) but no CUDA GPU is available; use --device cpu or auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise BadInputError(f"{device}: unknown device; use auto, cpu or cuda")
    return device


def build_cfg(config_file, settings: EngineSettings | None = None):
    from detectron2.config import get_cfg

    settings = settings or EngineSettings()
    cfg = get_cfg()
    try:
        cfg.merge_from_file(str(config_file))
    except Exception as exc:  # yaml errors, unknown keys, missing _BASE_
        raise BadInputError(f"{config_file}: not a usable detectron2 config ({exc.__class__.__name__}: {exc})") from exc
    cfg.MODEL.DEVICE = resolve_device(settings.device)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = settings.score_thresh
    cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST = settings.nms_thresh
    cfg.MODEL.RETINANET.SCORE_THRESH_TEST = settings.score_thresh
    cfg.TEST.DETECTIONS_PER_IMAGE = settings.max_detections
    return cfg


def _num_classes(cfg) -> int:
    return cfg.MODEL.RETINANET.NUM_CLASSES if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else cfg.MODEL.ROI_HEADS.NUM_CLASSES


class Engine:
    """A loaded model that turns RGB images into ``fo.Detections``."""

    def __init__(self, model: str = "demo", weights: str | None = None, settings: EngineSettings | None = None,
                 trust_checkpoint: bool = False, progress: Progress | None = None):
        import torch
        from detectron2.modeling import build_model

        self.spec = resolve_model(model)
        self.settings = settings or EngineSettings()
        self.cfg = build_cfg(self.spec.config_file, self.settings)
        weights = weights or self.spec.weights
        if not weights:
            raise BadInputError(f"{model}: no weights; pass --weights PATH")
        if "://" in str(weights):
            weights = str(fetch_weights(str(weights), progress=progress))
        self.weights = str(weights)
        n = _num_classes(self.cfg)
        self.classes = list(self.spec.classes) or [f"class_{i}" for i in range(n)]
        if len(self.classes) != n:
            raise BadInputError(f"{model}: the config has {n} classes but {len(self.classes)} class names")
        self.model = build_model(self.cfg)
        self.model.eval()
        checkpointer = make_checkpointer(self.model, trust_checkpoint)
        checkpoint = checkpointer._load_file(self.weights)
        self._check_class_count(checkpoint.get("model", {}), n)
        checkpointer._load_model(checkpoint)
        self.weights_sha256 = file_sha256(self.weights)
        self.device = self.cfg.MODEL.DEVICE
        self.input_format = self.cfg.INPUT.FORMAT
        from detectron2.data import transforms as T

        self._resize = T.ResizeShortestEdge([self.cfg.INPUT.MIN_SIZE_TEST] * 2, self.cfg.INPUT.MAX_SIZE_TEST)
        self.has_masks = bool(self.cfg.MODEL.MASK_ON)
        self._torch = torch

    def _check_class_count(self, state: dict, n: int) -> None:
        for key in ("roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias"):
            if key in state and tuple(np.shape(state[key]))[0] != n + 1:
                raise BadInputError(
                    f"{self.weights}: class-count mismatch: the config has {n} classes, "
                    f"the weights have {tuple(np.shape(state[key]))[0] - 1}"
                )

    @property
    def run_info(self) -> dict:
        return {"model": self.spec.name, "weights": self.weights, "weights_sha256": self.weights_sha256,
                "classes": self.classes, **asdict(self.settings), "device": self.device}

    @property
    def run_key(self) -> str:
        info = {k: v for k, v in self.run_info.items() if k not in ("device", "weights")}
        return hashlib.sha1(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]

    def _inputs(self, image_rgb: np.ndarray) -> dict:
        height, width = image_rgb.shape[:2]
        image = image_rgb if self.input_format == "RGB" else image_rgb[:, :, ::-1]
        resized = self._resize.get_transform(image).apply_image(image)
        tensor = self._torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
        return {"image": tensor, "height": height, "width": width}

    def predict_instances(self, images_rgb: list[np.ndarray]) -> list:
        """detectron2 ``Instances`` (on the CPU) for each image, at the image's own size."""
        with self._torch.inference_mode():
            outputs = self.model([self._inputs(im) for im in images_rgb])
        return [out["instances"].to("cpu") for out in outputs]

    def to_detections(self, instances):
        fo = fiftyone()
        height, width = instances.image_size
        boxes = instances.pred_boxes.tensor.numpy()
        scores = instances.scores.numpy()
        classes = instances.pred_classes.numpy()
        masks = instances.pred_masks.numpy() if instances.has("pred_masks") else None
        detections = []
        for i in range(len(instances)):
            label = self.classes[int(classes[i])]
            if masks is not None:
                x0, y0, x1, y1 = boxes[i]
                det = mk.bitmap_to_detection(masks[i], label, empty_box=(x0, y0, x1 - x0, y1 - y0),
                                             confidence=float(scores[i]))
            else:
                x0, y0, x1, y1 = boxes[i]
                det = fo.Detection(label=label, confidence=float(scores[i]),
                                   bounding_box=[x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height])
            detections.append(det)
        return fo.Detections(detections=detections)

    def predict(self, image_rgb: np.ndarray):
        """``fo.Detections`` for one RGB image."""
        return self.to_detections(self.predict_instances([image_rgb])[0])


@dataclass
class InferenceReport:
    predicted: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.predicted / self.seconds if self.seconds else 0.0


def _decode(path: str):
    try:
        return read_image(path)
    except Exception as exc:  # a bad image must not stop the run
        return exc


def prefetched(paths: Iterable[str], workers: int = 2, depth: int = 8):
    """Yield ``(path, image or exception)`` in order, decoding ahead on a thread pool."""
    paths = list(paths)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        futures = [pool.submit(_decode, p) for p in paths[:depth]]
        for i, path in enumerate(paths):
            if i + depth < len(paths):
                futures.append(pool.submit(_decode, paths[i + depth]))
            yield path, futures[i].result()
            futures[i] = None


def ensure_detections_field(dataset, name: str) -> None:
    fo = fiftyone()
    schema = dataset.get_field_schema()
    if name not in schema:
        dataset.add_sample_field(name, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    elif getattr(schema[name], "document_type", None) is not fo.Detections:
        raise BadInputError(f"field {name!r} exists and does not hold Detections; choose another --field")


def run_inference(view, engine: Engine, field: str = "predictions", progress: Progress | None = None,
                  overwrite: bool = False, batch_size: int = 1, write_every: int = 16,
                  on_written: Callable[[list[str]], None] | None = None) -> InferenceReport:
    """Predict every sample of ``view`` into ``field``; cancellable and resumable."""
    progress = progress or Progress()
    dataset = view._dataset
    ensure_detections_field(dataset, field)
    run_field = f"{field}_run"
    if run_field not in dataset.get_field_schema():
        dataset.add_sample_field(run_field, fiftyone().StringField)
    ids, paths, done_keys = view.values(["id", "filepath", run_field])
    todo = [(i, p) for i, p, k in zip(ids, paths, done_keys) if overwrite or k != engine.run_key]
    report = InferenceReport(skipped=len(ids) - len(todo))
    runs = dict(dataset.info.get(RUNS_INFO_KEY, {}))
    runs[field] = {**engine.run_info, "run_key": engine.run_key, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    dataset.info[RUNS_INFO_KEY] = runs
    dataset.save()
    pending: dict[str, object] = {}

    def flush():
        if pending:
            dataset.set_values(field, dict(pending), key_field="id")
            dataset.set_values(run_field, {k: engine.run_key for k in pending}, key_field="id")
            if on_written:
                on_written(list(pending))
            pending.clear()

    progress.start(len(todo), f"inference ({engine.spec.name})")
    start = time.perf_counter()
    try:
        batch: list[tuple[str, np.ndarray]] = []
        stream = prefetched([p for _, p in todo], depth=max(8, 2 * batch_size))
        for (sample_id, _), (path, image) in zip(todo, stream):
            progress.check()
            if isinstance(image, Exception):
                report.failures.append(str(image))
                progress.advance()
                continue
            batch.append((sample_id, image))
            if len(batch) >= batch_size:
                _predict_batch(engine, batch, pending, report)
                progress.advance(len(batch))
                batch = []
                if len(pending) >= write_every:
                    flush()
        if batch:
            _predict_batch(engine, batch, pending, report)
            progress.advance(len(batch))
    finally:
        flush()
        report.seconds = time.perf_counter() - start
        progress.finish()
    return report


def _predict_batch(engine: Engine, batch, pending, report: InferenceReport) -> None:
    instances = engine.predict_instances([im for _, im in batch])
    for (sample_id, _), inst in zip(batch, instances):
        pending[sample_id] = engine.to_detections(inst)
        report.predicted += 1
