"""Train or fine-tune a Mask R-CNN on a FiftyOne dataset or view with detectron2's trainer.

The view is registered in detectron2's ``DatasetCatalog`` (RLE masks, ``bitmask`` format), a
deterministic held-out split is kept aside and evaluated with pycocotools at the end, and the
result is a model directory that :class:`~maskreview.core.model.engine.Engine` loads:
``config.yaml``, ``model_final.pth`` (a plain state dict), ``classes.json``, ``training.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from maskreview.core import masks as mk
from maskreview.core.errors import BadInputError
from maskreview.core.fields import run_field
from maskreview.core.images import read_image
from maskreview.core.model.registry import download_url, fetch_weights, is_url, model_classes, register_local_model, resolve_model
from maskreview.core.model.safe_loading import load_checkpoint_file, make_checkpointer
from maskreview.core.model.distributed import Launch, unwrap
from maskreview.core.progress import Progress, TerminalProgress
from maskreview.core.store import dataset_of, fiftyone
from maskreview.core.model.engine import Engine, EngineSettings, build_cfg
from maskreview.core.model import distributed
from maskreview.core.evaluation import STAT_NAMES, evaluate
from maskreview.core.model.runs import run_inference
from maskreview.core.model.provenance import forget_run

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    iters: int = 1000
    lr: float | None = None  # default: the base config's, scaled linearly when ``batch`` changes it
    batch: int | None = None
    log_period: int = 20  # iterations between entries of the loss log (training.json "losses")
    holdout: float = 0.1
    checkpoint_period: int = 500
    num_workers: int = 1
    fp16_weights: bool = False  # write model_final.pth in half precision (to ship small models)
    resume: bool = False
    trust_checkpoint: bool = False  # let configs and checkpoints hold Python objects (runs their code)
    opts: list[str] = field(default_factory=list)  # extra detectron2 config overrides KEY VALUE ...
    launch: Launch | None = None  # DDP over several processes / machines (core/model/distributed.py)


def parse_base(base: str) -> tuple[str, str | None]:
    """``CONFIG[:WEIGHTS]``: split off weights only when the tail names a checkpoint file."""
    head, sep, tail = base.rpartition(":")
    if sep and tail.lower().endswith((".pth", ".pkl")) and head:
        return head, tail
    return base, None


def check_opts(cfg, opts: list[str]) -> None:
    """Try ``--opts KEY VALUE ...`` on a copy of ``cfg``: a bad key or value stops before any work."""
    if not opts:
        return
    if len(opts) % 2:
        raise BadInputError(f"--opts {' '.join(opts)}: expected KEY VALUE pairs, got an odd number of words ({len(opts)})")
    trial = cfg.clone()
    trial.defrost()
    for key, value in zip(opts[::2], opts[1::2]):
        try:
            trial.merge_from_list([key, value])
        except Exception as exc:  # KeyError (unknown key), ValueError/AssertionError (type)...
            why = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).splitlines()
            raise BadInputError(f"--opts {key} {value}: {why[0][:200] if why else type(exc).__name__}") from exc
        if key in _OPTS_LOWEST:
            (section, name), (lowest, wording) = key.split("."), _OPTS_LOWEST[key]
            if not trial[section][name] >= lowest:
                raise BadInputError(f"--opts {key} {value}: must be {wording}")


# numbers detectron2 takes without a word and then fails on deep inside training
_OPTS_LOWEST = {"SOLVER.IMS_PER_BATCH": (1, "at least 1"), "SOLVER.MAX_ITER": (1, "at least 1"),
                "SOLVER.CHECKPOINT_PERIOD": (1, "at least 1"), "SOLVER.BASE_LR": (1e-12, "above 0"),
                "DATALOADER.NUM_WORKERS": (0, "0 or more")}


def check_resume_checkpoint(work_dir: Path, trust_checkpoint: bool = False) -> None:
    """Read the checkpoint that ``work_dir/last_checkpoint`` names through the safe loader.

    detectron2's trainer opens its log files before it loads the checkpoint; checking first
    means a refused checkpoint leaves the folder as it was.
    """
    pointer = work_dir / "last_checkpoint"
    if not pointer.is_file():
        return
    try:
        name = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{pointer}: unreadable ({exc})") from exc
    load_checkpoint_file(work_dir / name, trust_checkpoint)


def split_ids(ids: list[str], holdout: float) -> tuple[list[str], list[str]]:
    """A stable split: a sample is held out by a hash of its id, not by its position."""
    if holdout <= 0:
        return list(ids), []
    keyed = sorted(ids, key=lambda i: hashlib.sha1(i.encode()).hexdigest())
    n_hold = max(1, int(round(len(ids) * holdout))) if len(ids) > 1 else 0
    held = set(keyed[:n_hold])
    return [i for i in ids if i not in held], [i for i in ids if i in held]


def detectron2_dicts(view, gt_field: str, classes: list[str]) -> list[dict]:
    """Dataset dicts for detectron2 (absolute XYWH boxes, compressed RLE segmentations)."""
    from detectron2.structures import BoxMode

    index = {c: i for i, c in enumerate(classes)}
    from pycocotools import mask as mask_utils

    if None in view.values("metadata"):
        view.compute_metadata()
    records = []
    for sid, path, meta, dets in zip(*view.values(["id", "filepath", "metadata", gt_field])):
        height, width = int(meta.height), int(meta.width)
        annotations = []
        for det in (dets.detections if dets else []):
            if det.label not in index:
                continue
            rle = mk.detection_to_rle(det, height, width)
            if mask_utils.area(rle) == 0:
                continue
            annotations.append({
                "bbox": [float(v) for v in mask_utils.toBbox(rle)], "bbox_mode": BoxMode.XYWH_ABS,
                "segmentation": mk.rle_to_json(rle), "category_id": index[det.label],
                "iscrowd": int(bool(det["iscrowd"])) if det.has_field("iscrowd") and det["iscrowd"] else 0,
            })
        records.append({"file_name": path, "image_id": sid, "height": height, "width": width,
                        "annotations": annotations})
    return records


def pixel_stats(paths: list[str], n: int = 64) -> tuple[list[float], list[float]]:
    """Per-channel RGB mean and std of a sample of the training images."""
    pick = paths[:: max(1, len(paths) // n)][:n]
    pixels = np.concatenate([read_image(p).reshape(-1, 3)[::7] for p in pick]).astype(np.float64)
    return pixels.mean(0).round(2).tolist(), pixels.std(0).round(2).tolist()


def _classes_of(view, gt_field: str, base_classes: list[str]) -> list[str]:
    """The base model's classes when they name every label (its heads carry over), else the data's."""
    labels = set(view.distinct(f"{gt_field}.detections.label"))
    if labels and labels <= set(base_classes):
        return list(base_classes)
    ordered = [c for c in (view.default_classes or []) if c in labels]
    return ordered + sorted(labels - set(ordered))


# layers whose outputs are per class: they start afresh when the class list changes
_CLASS_HEADS = ("roi_heads.box_predictor.cls_score.", "roi_heads.box_predictor.bbox_pred.",
                "roi_heads.mask_head.predictor.", "head.cls_score.")


def _load_base_weights(model, weights: str, same_classes: bool, progress: Progress,
                       trust_checkpoint: bool = False) -> None:
    if is_url(weights):
        weights = str(fetch_weights(download_url(weights), progress=progress))
    checkpoint = load_checkpoint_file(weights, trust_checkpoint)
    if not same_classes:
        checkpoint["model"] = {k: v for k, v in checkpoint["model"].items() if not k.startswith(_CLASS_HEADS)}
    checkpointer = make_checkpointer(model, trust_checkpoint)
    checkpointer._log_incompatible_keys(checkpointer._load_model(checkpoint))


def train(view, gt_field: str, base: str, out_dir: str | Path, settings: TrainSettings | None = None,
          progress: Progress | None = None) -> dict:
    """Train from ``base`` (``CONFIG[:WEIGHTS]``) on ``view``; write a model dir to ``out_dir``."""
    from detectron2.data import DatasetCatalog, MetadataCatalog


    settings = settings or TrainSettings()
    progress = progress or Progress()
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{out}: exists and is not a folder")
    if settings.iters < 1 or settings.log_period < 1:
        raise BadInputError("--iters and the loss-log period must be at least 1")
    if not 0 <= settings.holdout < 1:
        raise BadInputError(f"--holdout {settings.holdout}: must be a fraction in [0, 1)")
    schema = dataset_of(view).get_field_schema()
    if gt_field not in schema:
        raise BadInputError(f"dataset {dataset_of(view).name!r} has no field {gt_field!r}")
    if getattr(schema[gt_field], "document_type", None) is not fiftyone().Detections:
        raise BadInputError(f"field {gt_field!r} does not hold Detections (instance masks)")
    config_name, weights = parse_base(base)
    spec = resolve_model(config_name)
    cfg = build_cfg(spec.config_file, EngineSettings(device="auto"), trust_config=settings.trust_checkpoint)
    check_opts(cfg, settings.opts)
    if settings.resume:
        check_resume_checkpoint(out / "work", settings.trust_checkpoint)
    weights = weights or spec.weights
    base_classes = model_classes(spec, cfg) if weights else []
    classes = _classes_of(view, gt_field, base_classes)
    if not classes:
        raise BadInputError(f"no {gt_field} labels to train on in {dataset_of(view).name!r}")

    ids = view.values("id")
    if len(ids) < 2 and settings.holdout > 0:
        raise BadInputError("need at least 2 samples to hold some out (or pass --holdout 0)")
    train_ids, held_ids = split_ids(ids, settings.holdout)
    train_view, held_view = view.select(train_ids, ordered=True), view.select(held_ids, ordered=True)
    tag = hashlib.sha1(f"{out}{time.time()}".encode()).hexdigest()[:8]
    name = f"maskreview_train_{tag}"
    records = detectron2_dicts(train_view, gt_field, classes)
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(thing_classes=classes)
    try:
        if settings.launch is not None and settings.launch.distributed:
            report = _train_distributed(cfg, name, records, weights, classes, base_classes, settings, out)
            if report is None:  # a machine other than rank 0: that one writes the model folder
                return {}
        else:
            report = _train(cfg, name, records, weights, classes, base_classes, settings, progress, out)
        report = {"base": base, "dataset": dataset_of(view).name, "gt_field": gt_field, **report,
                  "train_samples": len(train_ids), "held_out_samples": len(held_ids)}
        if held_ids:
            report["held_out_eval"] = evaluate_model_dir(out, held_view, gt_field)
            report["held_out_ids"] = held_ids
        (out / "training.json").write_text(json.dumps(report, indent=1))
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_local_model(out)
    return report


def _train_distributed(cfg, name, records, weights, classes, base_classes, settings: TrainSettings,
                       out: Path) -> dict | None:
    """Train in every rank of ``settings.launch`` (detectron2's DDP); the report of global rank 0,
    which alone writes the model files (None on the other machines)."""


    spec = settings.launch
    spec.check_devices(cfg.MODEL.DEVICE)
    opts = dict(zip(settings.opts[::2], settings.opts[1::2]))
    batch = int(opts.get("SOLVER.IMS_PER_BATCH") or settings.batch or cfg.SOLVER.IMS_PER_BATCH)
    if batch % spec.world_size:
        raise BadInputError(f"the batch ({batch} images) must split evenly over the {spec.world_size} processes "
                            f"(--num-gpus x --num-machines): pass --batch {max(1, batch // spec.world_size) * spec.world_size}")
    result = out / "work" / "rank0_report.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    result.unlink(missing_ok=True)
    distributed.launch(_train_rank, spec, cfg, name, records, weights, classes, base_classes,
                       replace(settings, launch=None), str(out), str(result))
    if not spec.is_main_machine:
        return None
    return json.loads(result.read_text())


def _train_rank(cfg, name, records, weights, classes, base_classes, settings: TrainSettings, out: str,
                result: str) -> None:
    """One rank of a distributed training (a fresh process: the dataset is registered again)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.utils import comm
    from detectron2.utils.logger import setup_logger


    setup_logger(name="detectron2", abbrev_name="d2", distributed_rank=comm.get_rank())
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(thing_classes=classes)
    progress = TerminalProgress() if comm.is_main_process() else Progress()
    report = _train(cfg, name, records, weights, classes, base_classes, settings, progress, Path(out))
    if comm.is_main_process():
        Path(result).write_text(json.dumps(report))


def _train(cfg, name, records, weights, classes, base_classes, settings: TrainSettings, progress: Progress,
           out: Path) -> dict:
    import torch
    from detectron2.utils import comm


    cfg.DATASETS.TRAIN = (name,)
    cfg.DATASETS.TEST = ()
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = cfg.MODEL.RETINANET.NUM_CLASSES = len(classes)
    cfg.MODEL.WEIGHTS = ""
    cfg.INPUT.MASK_FORMAT = "bitmask"
    cfg.SOLVER.MAX_ITER = settings.iters
    cfg.SOLVER.CHECKPOINT_PERIOD = settings.checkpoint_period
    cfg.SOLVER.STEPS = tuple(s for s in cfg.SOLVER.STEPS if s < settings.iters)
    cfg.SOLVER.WARMUP_ITERS = min(cfg.SOLVER.WARMUP_ITERS, max(1, settings.iters // 5))
    if settings.batch:
        if not settings.lr:  # the linear scaling rule
            cfg.SOLVER.BASE_LR = cfg.SOLVER.BASE_LR * settings.batch / cfg.SOLVER.IMS_PER_BATCH
        cfg.SOLVER.IMS_PER_BATCH = settings.batch
    if settings.lr:
        cfg.SOLVER.BASE_LR = settings.lr
    cfg.DATALOADER.NUM_WORKERS = settings.num_workers
    cfg.OUTPUT_DIR = str(out / "work")
    if not weights:  # from scratch: normalise with this data's own statistics
        mean, std = pixel_stats([r["file_name"] for r in records])
        if cfg.INPUT.FORMAT == "BGR":
            mean, std = mean[::-1], std[::-1]
        cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD = mean, std
    if settings.opts:
        cfg.merge_from_list(list(settings.opts))
    Path(cfg.OUTPUT_DIR).mkdir(parents=True, exist_ok=True)

    if cfg.SEED >= 0:  # a fixed SEED makes data order and initialisation repeatable
        from detectron2.utils.env import seed_all_rng

        seed_all_rng(cfg.SEED)
    trainer = _make_trainer(cfg, progress, settings.log_period, settings.trust_checkpoint)
    if settings.resume and (Path(cfg.OUTPUT_DIR) / "last_checkpoint").exists():
        trainer.resume_or_load(resume=True)  # through the safe loader (see _make_trainer)
    elif weights:
        _load_base_weights(trainer.model, str(weights), classes == base_classes, progress,
                           settings.trust_checkpoint)
    main = comm.is_main_process()  # the one process that measures and writes (DDP: global rank 0)
    probe = records[:: max(1, len(records) // _PROBE_IMAGES)][:_PROBE_IMAGES] if main else []
    loss_before = fixed_batch_loss(unwrap(trainer.model), cfg, probe)
    progress.start(settings.iters, "training")
    started = time.time()
    try:
        trainer.train()
    finally:
        progress.finish()
    loss_after = fixed_batch_loss(unwrap(trainer.model), cfg, probe)
    ranks = _ranks_agree(unwrap(trainer.model)) if comm.get_world_size() > 1 else None
    if not main:
        return {}

    state = {k: (v.half() if settings.fp16_weights and v.is_floating_point() else v)
             for k, v in unwrap(trainer.model).state_dict().items()}
    final_cfg = cfg.clone()
    final_cfg.DATASETS.TRAIN = ()
    final_cfg.MODEL.WEIGHTS = ""
    final_cfg.OUTPUT_DIR = ""
    # each file appears whole or not at all (a stopped run leaves no half-written weights)
    for filename, write in (("model_final.pth", lambda p: torch.save(state, p)),
                            ("config.yaml", lambda p: p.write_text(final_cfg.dump())),
                            ("classes.json", lambda p: p.write_text(json.dumps(classes)))):
        tmp = out / f".{filename}.part"
        write(tmp)
        tmp.replace(out / filename)
    return {"classes": classes, "iters": settings.iters, "seconds": round(time.time() - started, 1),
            "losses": trainer.loss_log, "probe_loss_before": loss_before, "probe_loss_after": loss_after,
            "probe_images": len(probe), **({"distributed": ranks} if ranks else {})}


def _ranks_agree(model) -> dict:
    """DDP's check: every rank ends with the same parameters (all ranks call this). BatchNorm's
    running statistics are each rank's own (detectron2's DDP does not broadcast buffers)."""
    import torch
    import torch.distributed as dist
    from detectron2.utils import comm

    digest = hashlib.sha256()
    for tensor in model.parameters():
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    digests = comm.all_gather(digest.hexdigest())
    return {"world_size": comm.get_world_size(), "backend": str(dist.get_backend()),
            "written_by_rank": comm.get_rank(), "same_parameters_on_every_rank": len(set(digests)) == 1}


_PROBE_IMAGES = 16


def fixed_batch_loss(model, cfg, records: list[dict], seed: int = 0) -> float:
    """The model's mean training loss on fixed images, unaugmented, changing nothing in the model.

    The per-iteration loss log is noisy (each batch differs); this is the same measurement
    before and after training, so "the fine-tune lowered the loss" is a like-for-like claim.
    BatchNorm uses its running statistics (so measuring does not update them) and proposal
    sampling is seeded.
    """
    import torch
    from detectron2.data import DatasetMapper
    from detectron2.data import transforms as T
    from detectron2.utils.events import EventStorage

    if not records:
        return float("nan")
    mapper = DatasetMapper(is_train=True, image_format=cfg.INPUT.FORMAT, use_instance_mask=True,
                           instance_mask_format=cfg.INPUT.MASK_FORMAT,
                           augmentations=[T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)])
    was_training = model.training
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    total = 0.0
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]), EventStorage():
            torch.manual_seed(seed)
            for record in records:
                losses = model([mapper(dict(record))])
                total += float(sum(losses.values()))
    finally:
        model.train(was_training)
    return round(total / len(records), 4)


def evaluate_model_dir(model_dir: Path, view, gt_field: str, trust_checkpoint: bool = False) -> dict:
    """Run a model dir over a view into a scratch field, evaluate, and remove the field."""

    engine = Engine(str(model_dir), settings=EngineSettings(), trust_checkpoint=trust_checkpoint)
    field_name = f"heldout_{hashlib.sha1(str(model_dir).encode()).hexdigest()[:6]}"
    dataset = dataset_of(view)
    try:
        run_inference(view, engine, field_name, overwrite=True)
        held = dataset.select(view.values("id"))
        if not held.count(f"{field_name}.detections"):  # an untrained model: AP 0, not an error

            return {**{name: 0.0 for name in STAT_NAMES}, "per_class": {}, "note": "no detections"}
        return evaluate(held, gt_field, field_name)
    finally:
        for name in (field_name, run_field(field_name)):
            if name in dataset.get_field_schema():
                dataset.delete_sample_field(name)
        forget_run(dataset, field_name)


def _make_trainer(cfg, progress: Progress, log_period: int = 20, trust_checkpoint: bool = False):
    from detectron2.engine import DefaultTrainer, HookBase
    from detectron2.utils import comm
    from detectron2.utils.events import CommonMetricPrinter, JSONWriter

    class ProgressHook(HookBase):
        def after_step(self):
            storage = self.trainer.storage
            it = self.trainer.iter + 1
            # with DDP, only the main process gathers the losses into its storage
            if comm.is_main_process() and (it % log_period == 0 or it == self.trainer.max_iter):
                loss = storage.history("total_loss").median(log_period)
                self.trainer.loss_log.append({"iter": it, "total_loss": round(float(loss), 4),
                                              "lr": storage.history("lr").latest()})
            progress.advance()
            progress.check()

    class Trainer(DefaultTrainer):
        loss_log: list[dict] = []

        def build_writers(self):
            return [CommonMetricPrinter(self.max_iter), JSONWriter(str(Path(cfg.OUTPUT_DIR) / "metrics.json"))]

        def build_hooks(self):
            # Called by __init__ right after it made a plain DetectionCheckpointer, which would
            # unpickle OUT/work/last_checkpoint's file with plain pickle on resume.
            plain = self.checkpointer
            self.checkpointer = make_checkpointer(plain.model, trust_checkpoint, save_dir=plain.save_dir,
                                                  **plain.checkpointables)
            return super().build_hooks() + [ProgressHook()]

    trainer = Trainer(cfg)
    trainer.loss_log = []
    return trainer
