"""The detectron2 engine: build a predictor and run it on images (dataset runs: :mod:`~maskreview.core.model.runs`).

``Engine`` wraps a detectron2 model built from a :class:`~maskreview.core.model.registry.ModelSpec`.
``run_inference`` runs it over a FiftyOne dataset or view: the next images are decoded on a
thread pool while the model works, results are written in bulk as ``fo.Detections`` with
box-relative masks, and samples already predicted by the same model and settings are skipped.
A run never destroys review work: it replaces only the model's own untouched labels
(:mod:`maskreview.core.model.reviewed`), writes only into a field that is free or holds the same
model's output, and records its model on the field (:mod:`maskreview.core.model.provenance`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from maskreview.core.errors import BadInputError, MaskreviewError
from maskreview.core.fields import RUN_KEY
from maskreview.core.model.registry import (
    download_url,
    fetch_weights,
    file_sha256,
    is_url,
    model_classes,
    num_classes,
    resolve_model,
)
from maskreview.core.model.postprocess import box_local, detection_docs, raw_instances
from maskreview.core.model.safe_loading import load_checkpoint_file, load_config, make_checkpointer
from maskreview.core.progress import Progress
from maskreview.core.store import fiftyone
from maskreview import __version__

SUPPORTED_ARCHITECTURES = ("GeneralizedRCNN", "RetinaNet", "PanopticFPN")
# the class-specific layers whose first dimension gives a checkpoint's class count (+1: background)
_CLASS_COUNT_KEYS = ("roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias")


@dataclass
class EngineSettings:
    device: str = "auto"
    # detectron2's own SCORE_THRESH_TEST: low enough for COCO AP; the GUI's slider hides the rest.
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    max_detections: int = 100


GPU_BATCH = 8  # R50-FPN on an H200, 100-image dataset runs: 0.038 / 0.025 / 0.0215 / 0.022 s an image at 1 / 4 / 8 / 16 a pass
SMALL_GPU_BATCH, SMALL_GPU_BYTES = 4, 12 * 2**30  # 8 images of 800x1333 need a few GiB of activations


def gpu_batch(total_memory: int) -> int:
    """Images per forward pass on a GPU of ``total_memory`` bytes. detectron2's eager model is
    bound by its kernel launches there, which a batch shares out."""
    return GPU_BATCH if total_memory >= SMALL_GPU_BYTES else SMALL_GPU_BATCH


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MaskreviewError(
                f"CUDA was asked for (--device {device}) but no CUDA GPU is available; use --device cpu or auto")
        return device
    if device != "cpu":
        raise BadInputError(f"{device}: unknown device; use auto, cpu or cuda")
    return device


def build_cfg(config_file, settings: EngineSettings | None = None, trust_config: bool = False):
    """A detectron2 config from a YAML file (read as data, see ``load_config``) with the engine's settings."""
    settings = settings or EngineSettings()
    if not 0.0 <= settings.score_thresh <= 1.0 or not 0.0 <= settings.nms_thresh <= 1.0:
        raise BadInputError("score and NMS thresholds must lie between 0 and 1")
    if settings.max_detections < 1:
        raise BadInputError("max detections must be at least 1")
    cfg = load_config(config_file, trust_config)
    cfg.MODEL.DEVICE = resolve_device(settings.device)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = settings.score_thresh
    cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST = settings.nms_thresh
    cfg.MODEL.RETINANET.SCORE_THRESH_TEST = settings.score_thresh
    cfg.MODEL.RETINANET.NMS_THRESH_TEST = settings.nms_thresh
    cfg.TEST.DETECTIONS_PER_IMAGE = settings.max_detections
    return cfg


class Engine:
    """A loaded model that turns RGB images into ``fo.Detections``.

    Everything that can fail on the user's input (config, weights, class count, device) is
    checked before the model is built, each with a one-line :class:`MaskreviewError`.
    """

    def __init__(self, model: str = "demo", weights: str | None = None, settings: EngineSettings | None = None,
                 trust_checkpoint: bool = False, progress: Progress | None = None):
        import torch
        from detectron2.data import transforms as T
        from detectron2.modeling import build_model

        self.spec = resolve_model(model)
        self.settings = settings or EngineSettings()
        self.cfg = build_cfg(self.spec.config_file, self.settings, trust_config=trust_checkpoint)
        arch = self.cfg.MODEL.META_ARCHITECTURE
        if arch not in SUPPORTED_ARCHITECTURES:
            raise BadInputError(f"{model}: {arch} models do not predict instances; use a Mask R-CNN config")
        n = num_classes(self.cfg)
        if self.spec.classes and len(self.spec.classes) != n:
            raise BadInputError(f"{model}: class-count mismatch: the config has {n} classes, "
                                f"classes.json names {len(self.spec.classes)}")
        self.classes = model_classes(self.spec, self.cfg)

        weights = weights or self.spec.weights or self.cfg.MODEL.WEIGHTS or None
        if not weights:
            raise BadInputError(f"{model}: no weights; pass --weights PATH")
        sha256 = None
        if is_url(str(weights)):
            weights = fetch_weights(download_url(str(weights)), progress=progress)
            sha256 = weights.with_name(weights.name + ".sha256").read_text().strip()  # checked by the fetch
        self.weights = str(weights)
        checkpoint = load_checkpoint_file(self.weights, trust_checkpoint)
        self._check_class_count(checkpoint["model"], n)

        self.model = build_model(self.cfg)
        self.model.eval()
        incompatible = make_checkpointer(self.model, trust_checkpoint)._load_model(checkpoint)
        self._check_fit(incompatible)
        self.weights_sha256 = sha256 or file_sha256(self.weights)
        config = Path(self.spec.config_file)
        self.config_sha256 = file_sha256(config) if config.is_file() else ""
        resolved = self.cfg.clone()  # with every _BASE_ merged: a changed base file is another model
        resolved.MODEL.DEVICE, resolved.MODEL.WEIGHTS = "", ""
        self.resolved_config_sha256 = hashlib.sha256(resolved.dump().encode()).hexdigest()
        self.device = self.cfg.MODEL.DEVICE
        # images per forward pass in a dataset run: a GPU keeps busy on several at once; on the CPU
        # one at a time is as fast and keeps each result's latency low
        self.batch_size = (gpu_batch(torch.cuda.get_device_properties(self.device).total_memory)
                           if self.device.startswith("cuda") else 1)
        self.input_format = self.cfg.INPUT.FORMAT
        min_size = self.cfg.INPUT.MIN_SIZE_TEST
        self._resize = T.ResizeShortestEdge([min_size] * 2, self.cfg.INPUT.MAX_SIZE_TEST) if min_size else None
        self.has_masks = bool(self.cfg.MODEL.MASK_ON)
        self._torch = torch

    @property
    def cpu_threads(self) -> int:
        """torch's intra-op threads for this process's CPU work (shared with whatever else runs it)."""
        return self._torch.get_num_threads()

    def set_cpu_threads(self, threads: int) -> None:
        self._torch.set_num_threads(threads)

    def _check_class_count(self, state: dict, n: int) -> None:
        for key in _CLASS_COUNT_KEYS:
            if key in state and tuple(np.shape(state[key]))[0] != n + 1:
                raise BadInputError(
                    f"{self.weights}: class-count mismatch: the config has {n} classes, "
                    f"the weights have {tuple(np.shape(state[key]))[0] - 1}"
                )

    def _check_fit(self, incompatible) -> None:
        """Refuse weights that leave parts of the model untrained (detectron2 only warns)."""
        if incompatible.incorrect_shapes:
            key, got, want = incompatible.incorrect_shapes[0]
            raise BadInputError(f"{self.weights}: does not fit the config: {key} has shape {tuple(got)}, "
                                f"the model expects {tuple(want)}")
        params = {name for name, _ in self.model.named_parameters()}
        missing = [k for k in incompatible.missing_keys if k in params]
        if missing:
            raise BadInputError(f"{self.weights}: does not fit the config: {len(missing)} of {len(params)} "
                                f"parameters are missing from the weights (e.g. {missing[0]})")

    @property
    def run_info(self) -> dict:
        return {"model": self.spec.name, "weights": self.weights, "weights_sha256": self.weights_sha256,
                "classes": self.classes, **asdict(self.settings), "device": self.device}

    @property
    def provenance(self) -> dict:
        """What a prediction field records about the model that wrote it (``core.provenance``)."""

        return {**self.run_info, "config": str(self.spec.config_file), "config_sha256": self.config_sha256,
                "resolved_config_sha256": self.resolved_config_sha256, RUN_KEY: self.run_key,
                "maskreview_version": __version__}

    @property
    def run_key(self) -> str:
        """Same model, weights, classes and thresholds give the same key (device does not count)."""
        info = {k: v for k, v in self.run_info.items() if k not in ("device", "weights")}
        return hashlib.sha1(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]

    def prepare(self, image_rgb: np.ndarray) -> dict:
        """The model's input for one RGB image (resized to the test size): CPU work that a
        dataset run does on its decode threads, not between forward passes."""
        height, width = image_rgb.shape[:2]
        image = image_rgb if self.input_format == "RGB" else image_rgb[:, :, ::-1]
        if self._resize is not None:
            image = self._resize.get_transform(image).apply_image(image)
        # uint8 goes to the device (4x less to copy); the model normalises to float itself
        tensor = self._torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return {"image": tensor, "height": height, "width": width}

    def predict_instances(self, images_rgb: list[np.ndarray]) -> list:
        """detectron2 ``Instances`` (on the CPU) for each image, at the image's own size."""
        return self._instances([self.prepare(im) for im in images_rgb])

    def _instances(self, inputs: list[dict]) -> list:
        """The model's own output for :meth:`prepare`'d inputs (its postprocess: full-image masks), on the CPU."""
        with self._torch.inference_mode():
            outputs = self.model(inputs)
        return [out["instances"].to("cpu") for out in outputs]

    def infer(self, inputs: list[dict]) -> list:
        """The forward pass over :meth:`prepare`'d inputs: per image what :meth:`documents`
        turns into label documents (a dataset run does that on another thread meanwhile)."""
        if self.cfg.MODEL.META_ARCHITECTURE != "GeneralizedRCNN":  # its own postprocess: the general path
            return self._instances(inputs)
        with self._torch.inference_mode():
            return raw_instances(self.model, inputs)

    def documents(self, instances) -> tuple[list[dict], int, int]:
        """``(label documents, height, width)`` for one of :meth:`infer`'s results."""
        if self.cfg.MODEL.META_ARCHITECTURE != "GeneralizedRCNN":
            return [d.to_mongo() for d in self.to_detections(instances).detections], *instances.image_size
        with self._torch.inference_mode():
            return detection_docs(instances, self.classes), *instances.image_size

    def predict_docs(self, images_rgb: list[np.ndarray]) -> list[tuple[list[dict], int, int]]:
        """``(label documents, height, width)`` per image, the documents as
        ``to_detections(...).to_mongo()`` gives them, pixel for pixel, without detectron2's
        full-image masks or ``fo.Detection`` objects (:mod:`~maskreview.core.model.postprocess`)."""
        return [self.documents(inst) for inst in self.infer([self.prepare(im) for im in images_rgb])]

    def to_detections(self, instances):
        """``fo.Detections``: the model's boxes, masks cropped to them (box-relative)."""
        fo = fiftyone()
        height, width = instances.image_size
        boxes = instances.pred_boxes.tensor.numpy()
        scores = instances.scores.numpy()
        classes = instances.pred_classes.numpy()
        masks = instances.pred_masks.numpy() if instances.has("pred_masks") else None
        detections = []
        for i in range(len(instances)):
            label, score = self.classes[int(classes[i])], float(scores[i])
            if masks is None:
                x0, y0, x1, y1 = (float(v) for v in boxes[i])
                detections.append(fo.Detection(label=label, confidence=score, bounding_box=[
                    x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height]))
            else:
                detections.append(box_mask_detection(masks[i], boxes[i], label, confidence=score))
        return fo.Detections(detections=detections)

    def predict(self, image_rgb: np.ndarray):
        """``fo.Detections`` for one RGB image."""
        return self.to_detections(self.predict_instances([image_rgb])[0])


def box_mask_detection(bitmap: np.ndarray, box, label: str, **attributes):
    """A full-image mask and its predicted XYXY box as a ``fo.Detection`` (:func:`~maskreview.core.model.postprocess.box_local`:
    the model's box, the mask cropped to where ``masks.detection_to_bitmap`` pastes it back, the
    box grown for stray pixels outside it)."""
    fo = fiftyone()
    height, width = bitmap.shape
    rel, mask = box_local(bitmap, 0, 0, box, height, width)
    return fo.Detection(label=label, bounding_box=rel, mask=mask, **attributes)
