"""The ``maskreview`` command: the GUI by default, and headless jobs for scripts.

Every failure the user can fix is a :class:`MaskreviewError`: one line on stderr, exit code 2.
Heavy imports (torch, detectron2, FiftyOne) happen inside the commands that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys

from maskreview import __version__
from maskreview.cli_args import BATCH, COUNT, IMAGE_SIZE, SEED, OneLineParser, fraction, int_in, output_folder, \
    positive_float
from maskreview.core.errors import BadInputError, CancelledError, MaskreviewError, one_line
from maskreview.core.fields import DEFAULT_EVAL_KEY, GT_FIELD, PRED_FIELD
from maskreview.core.startup import quiet_library_warnings

EXIT_BAD_INPUT = 2


def _progress():
    from maskreview.core.progress import TerminalProgress

    return TerminalProgress()


def _open_view(args):
    from maskreview.core.sources import open_source

    dataset = open_source(args.source, images_dir=getattr(args, "images", None), progress=_progress(),
                          trust_json_size=getattr(args, "trust_json_size", False))
    view = dataset.view()
    tags = getattr(args, "view_tags", None) or getattr(args, "tags", None)
    if tags:
        view = view.match_tags(tags.split(","))
        if len(view) == 0:
            flag = "--view-tags" if getattr(args, "view_tags", None) else "--tags"
            raise BadInputError(f"{flag} {tags}: no sample of {dataset.name!r} has any of these tags")
    return dataset, view


# -------------------------------------------------------------------------------- commands

def cmd_open(args) -> int:
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    ):
        # Qt would abort with a cryptic platform-plugin message instead.
        raise MaskreviewError("no display to open the app on (DISPLAY is not set); run it in a desktop "
                              "session, or under 'xvfb-run -a maskreview ...'")
    from maskreview.gui.app import run_app

    return run_app(args.source, images_dir=args.images)


def cmd_import(args) -> int:
    from maskreview.core.sources import open_source, summary

    dataset = open_source(args.source, images_dir=args.images, name=args.name, progress=_progress(),
                          skip_bad=args.skip_bad, trust_json_size=args.trust_json_size)
    info = summary(dataset)
    if args.json:
        print(json.dumps(info))
    else:
        per_field = ", ".join(f"{k}: {v}" for k, v in info["instances"].items()) or "no labels"
        print(f"dataset {info['name']}: {info['samples']} samples, instances {per_field}")
    return 0


def cmd_demo_data(args) -> int:
    from maskreview.core import demo

    if args.real:
        print(demo.write_real_photos(args.out))
    else:
        print(demo.write_demo_dataset(args.out, n=args.n, seed=args.seed, size=args.size, progress=_progress()))
    return 0


def _engine(args):
    from maskreview.core.model.engine import Engine, EngineSettings

    settings = EngineSettings(device=args.device, score_thresh=args.score_thresh,
                              nms_thresh=args.nms_thresh, max_detections=args.max_dets)
    return Engine(args.model, weights=args.weights, settings=settings,
                  trust_checkpoint=args.trust_checkpoint, progress=_progress())


def cmd_infer(args) -> int:
    from maskreview.core.model import distributed

    spec = _launch_spec(args)
    if not spec.distributed:
        return _infer(args)
    spec.check_devices(args.device)
    _engine(args)  # checked here, once: a bad model or weights file stops before any rank starts
    dataset, _ = _open_view(args)  # imported here, once, before the ranks open it by name
    args.source = dataset.name
    distributed.launch(_infer, spec, args, share_threads=False)  # each rank: a single run's numbers
    return 0


def _infer(args) -> int:
    from maskreview.core.model import distributed, sharding
    from maskreview.core.model.cpu_share import CoreShare
    from maskreview.core.model.runs import run_inference

    rank, world, _ = distributed.rank()
    if world > 1 and args.max_pixels:  # a rank is a fresh process
        from maskreview.core.images import set_max_pixels

        set_max_pixels(args.max_pixels)
    shard = sharding.within(args.shard, rank, world)
    args.device = distributed.rank_device(args.device)
    engine = _engine(args)  # first: a bad model or weights file must not leave an import behind
    dataset, view = _open_view(args)
    with CoreShare(fixed=args.threads) if engine.device == "cpu" else contextlib.nullcontext() as share:
        report = run_inference(view, engine, field=args.field, progress=_progress(), overwrite=args.overwrite,
                               batch_size=args.batch_size, write_seconds=2.0,  # also notices a lost database soon
                               shard=shard, before_image=share.rebalance if share else None)
    print(f"{dataset.name}{f' shard {shard}' if shard else ''}: predicted {report.predicted} samples into '{args.field}' "
          f"({report.images_per_second:.2f} img/s), skipped {report.skipped} already done, "
          f"{len(report.failures)} failed")
    if report.predicted:
        print(f"kept {report.kept_reviewed} reviewed labels as they were; replaced {report.replaced} untouched "
              f"model labels; left out {report.dropped_as_deleted} new predictions the reviewer had deleted "
              f"and {report.dropped_as_reviewed} already reviewed")
    for failure in report.failures:
        print(f"  skipped: {failure}", file=sys.stderr)
    return 0


def cmd_eval(args) -> int:
    from maskreview.core import evaluation as ev

    if args.gt or args.pred:
        if not (args.gt and args.pred) or args.source:
            raise MaskreviewError("give either SOURCE with --gt-field/--pred-field, or both --gt and --pred files")
        result = ev.evaluate_files(args.gt, args.pred, args.iou_type)
    else:
        if not args.source:
            raise MaskreviewError("give SOURCE (or --gt GT.json --pred RESULTS.json)")
        _, view = _open_view(args)
        key = None if args.eval_key.lower() == "none" else args.eval_key
        results = ev.evaluate_and_store(view, args.gt_field, args.pred_field, args.iou_type, eval_key=key,
                                        iou_thresh=args.iou_thresh, progress=_progress())
        result = {**results.summary, "warnings": results.warnings}
        if key and not args.json:
            print(f"stored under eval key {key!r} (per sample {key}_tp/_fp/_fn, per label {key}, {key}_id, "
                  f"{key}_iou, {key}_biou)")
    for warning in result.get("warnings", []):
        print(f"maskreview: warning: {warning}", file=sys.stderr)
    keys = ("mAP", "AP50", "AP75", "APs", "APm", "APl", "AR100")
    if args.json:
        print(json.dumps({**{k: result[k] for k in keys}, "per_class": result["per_class"]}))
    else:
        print("  ".join(f"{k} {result[k]:.4f}" for k in keys))
        for name, ap in result["per_class"].items():
            print(f"  {name:<24} AP {ap:.4f}")
    return 0


def cmd_compare(args) -> int:
    from maskreview.core.evaluation.compare import compare_fields

    _, view = _open_view(args)
    result = compare_fields(view, args.gt_field, args.a, args.b, args.iou_type, args.iou_thresh, progress=_progress())
    for warning in result.warnings:
        print(f"maskreview: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    a, b = result.metrics["a"], result.metrics["b"]
    print(f"{'':<24} {'A: ' + args.a:>22} {'B: ' + args.b:>22} {'B - A':>8}")
    classes = sorted(set(a["per_class"]) | set(b["per_class"]))
    names = [(k, k) for k in ("mAP", "AP50", "AP75")] + [(f"  {c} AP", c) for c in classes]
    for title, key in names:
        va = a.get(key, a["per_class"].get(key, -1.0))
        vb = b.get(key, b["per_class"].get(key, -1.0))
        print(f"{title:<24} {va:>22.4f} {vb:>22.4f} {vb - va:>+8.4f}")
    print(f"\nper ground-truth instance, matched at IoU {args.iou_thresh:g} ({len(result.rows)} instances):")
    print(f"{'class':<24} {'both':>6} {'A only':>7} {'B only':>7} {'neither':>8} {'class changed':>14}")
    for cls, c in sorted(result.counts.items()):
        print(f"{cls:<24} {c['both']:>6} {c['a_only']:>7} {c['b_only']:>7} {c['neither']:>8} {c['class_changed']:>14}")
    changed = [r for r in result.rows if r.status in ("a_only", "b_only") or r.class_changed]
    if changed:
        print("\nfound by one model only, or with another class (sample, GT label, A label, B label):")
        for r in changed:
            side = [f"{lab or '-'} {r_id or ''} IoU {iou:.3f}" if iou is not None else "-"
                    for lab, r_id, iou in ((r.a_label, r.a_id, r.a_iou), (r.b_label, r.b_id, r.b_iou))]
            print(f"  {r.status:<7} {r.sample_id} gt {r.gt_label} {r.gt_id} | A {side[0]} | B {side[1]}"
                  + ("  (class changed)" if r.class_changed else ""))
    return 0


def cmd_train(args) -> int:
    from maskreview.core.model.training import TrainSettings, train

    from detectron2.utils.logger import setup_logger

    setup_logger(name="detectron2", abbrev_name="d2")
    launch = _launch_spec(args)  # checked before anything is opened
    _, view = _open_view(args)
    settings = TrainSettings(iters=args.iters, lr=args.lr, batch=args.batch, holdout=args.holdout,
                             checkpoint_period=args.checkpoint_period, fp16_weights=args.fp16,
                             resume=args.resume, log_period=args.log_period, opts=args.opts or [],
                             trust_checkpoint=args.trust_checkpoint, launch=launch)
    report = train(view, args.gt_field, args.base, args.out, settings, progress=_progress())
    if not report:  # --machine-rank above 0: machine 0 writes the model
        print(f"machine {args.machine_rank}: trained its ranks; machine 0 writes the model folder")
        return 0
    held = report.get("held_out_eval")
    print(f"model written to {args.out}"
          + (f"; held-out mask AP {held['mAP']:.4f} on {report['held_out_samples']} samples" if held else ""))
    return 0


def cmd_export(args) -> int:
    from maskreview.core import export as ex

    dataset, _ = _open_view(argparse.Namespace(source=args.source, images=args.images))
    tags, label_tags = _split(args.tags), _split(args.label_tags)
    view = ex.select(dataset, tags, label_tags, args.field)
    ex.check_matches(view, tags, label_tags)
    report = ex.export(view, args.out, args.format, field=args.field, copy_images=args.copy_images,
                       progress=_progress())
    per_field = ", ".join(f"{n} {f}" for f, n in report["labels"].items()) if len(report["labels"]) > 1 else ""
    print(f"exported {report['samples']} samples, {report['annotations']} instances"
          f"{f' ({per_field})' if per_field else ''} as {report['format']} to {report['out']}")
    return 0


def _launch_spec(args):
    from maskreview.core.model.distributed import Launch

    return Launch(args.num_gpus, args.num_machines, args.machine_rank, args.dist_url)


def _shard_arg(text: str):
    from maskreview.core.model.sharding import parse_shard

    try:
        return parse_shard(text)
    except BadInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_launch_args(p):
    g = p.add_argument_group("distributed (detectron2's launcher)")
    g.add_argument("--num-gpus", type=int_in(1, 1024), default=1,
                   help="processes on this machine: one per GPU (on CPU they share the cores)")
    g.add_argument("--num-machines", type=int_in(1, 65536), default=1)
    g.add_argument("--machine-rank", type=int_in(0), default=0, help="this machine's rank, 0..num-machines-1")
    g.add_argument("--dist-url", default="auto", help="tcp://HOST:PORT of machine rank 0 (auto: a free "
                   "loopback port, one machine only)")


def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _stop_on_interrupt() -> None:
    """Ctrl+C (SIGINT) and SIGTERM end a serving command cleanly, even when it was started with
    SIGINT ignored: a job started in the background of a non-interactive shell (``cmd &`` in a
    script, CI) inherits that, and Python then never raises KeyboardInterrupt, so the command
    could not be stopped but by a kill that leaves its server child behind."""
    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def cmd_app(args) -> int:
    from maskreview.core import app_bridge as ab

    dataset, view = _open_view(args)
    if args.view:
        view = ab.build_view(dataset, ab.ViewSpec(saved_view=args.view))
        view = view.match_tags(args.tags.split(",")) if args.tags else view
    server = ab.show(dataset, view, port=args.port)
    url = server.dataset_url(dataset.name)
    if server.process is None:
        print(f"the FiftyOne App already serving {dataset.name!r} on {url} now shows this view")
        return 0
    print(f"FiftyOne App: {url} (Ctrl+C stops it)", flush=True)
    if not args.no_browser:
        ab.open_browser(url)
    _stop_on_interrupt()
    try:
        ab.serve_until_stopped(server)
    finally:
        ab.shutdown()
    return 0


def cmd_desktop(args) -> int:
    from maskreview import desktop

    paths = desktop.install() if args.action == "install" else desktop.uninstall()
    verb = "installed" if args.action == "install" else "removed"
    print(f"{verb} {len(paths)} files under {desktop.data_home()}")
    for path in paths:
        print(f"  {path}")
    return 0


def cmd_models(args) -> int:
    from maskreview.core.model import registry as models

    print("built-in:\n  demo" + ("" if models.DEMO_MODEL_DIR.joinpath("model_final.pth").exists() else "  (weights missing)"))
    print("local model folders:")
    for path in models.local_models():
        print(f"  {path}")
    print("cached weights:")
    for path in models.cached_weights():
        print(f"  {path}")
    print("model-zoo configs (weights download on first use):")
    for name in models.zoo_config_names():
        cached = models.cached_weights_path(models.zoo_weights_url(name)).exists()
        print(f"  {name}" + ("  (weights cached)" if cached else ""))
    return 0


def cmd_explain(args) -> int:
    from maskreview.core.model import internals
    from maskreview.core.model import internals_render
    from maskreview.core.images import read_image

    image = read_image(args.image)
    engine = _engine(args)
    internals.check_level(engine, args.level)
    cap = internals.capture(engine, image)
    if cap.message():
        print(f"maskreview: {cap.message()}", file=sys.stderr)
    paths = internals_render.explain(cap, image, args.out, level=args.level, top_k=args.top_k,
                                     instance=args.instance, proposal=args.proposal, classes=engine.classes)
    print(f"{cap.num_instances} instances, {0 if cap.proposals is None else len(cap.proposals)} proposals; wrote:")
    for path in paths:
        print(f"  {path}")
    return 0


# -------------------------------------------------------------------------------- parser

SOURCE_HELP = ("an image, a folder of images, a COCO instances JSON, or a FiftyOne dataset name "
               "(dataset:NAME when a path of that name exists here too)")


def _add_source_args(p, optional: bool = False, trust_size: bool = True):
    p.add_argument("source", nargs="?" if optional else None, help=SOURCE_HELP)
    p.add_argument("--images", help="image folder for a COCO JSON (default: images/ or data/ beside it)")
    p.add_argument("--max-pixels", type=int_in(1), help="open images of up to this many pixels (default: PIL's "
                   "limit, 89478485, or MASKREVIEW_MAX_PIXELS); larger ones are refused as possible bombs")
    if trust_size:  # not for the app, which checks every header
        p.add_argument("--trust-json-size", action="store_true", help="take a COCO JSON's image width/height as "
                       "given instead of checking each image's header (for images on slow remote storage)")


def _add_engine_args(p):
    p.add_argument("--model", default="demo", help="demo, a model folder, a zoo config name or a YAML file")
    p.add_argument("--weights", help="weights file (.pth/.pkl) or URL; default: the model's own")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--score-thresh", type=fraction(), default=0.05,
                   help="keep detections scoring at least this (default 0.05, as COCO evaluation wants)")
    p.add_argument("--nms-thresh", type=fraction(), default=0.5)
    p.add_argument("--max-dets", type=int_in(1, 10_000), default=100)
    _add_trust_arg(p)


def _add_trust_arg(p):
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow checkpoints and configs that hold Python objects (runs code from the files!)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="maskreview", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"maskreview {__version__}")
    parser.add_argument("--database-uri", help="a shared MongoDB for FiftyOne (default: a local database "
                        "under the user data dir; also FIFTYONE_DATABASE_URI)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("open", help="open the review app (the demo when SOURCE is omitted)")
    _add_source_args(p, optional=True, trust_size=False)
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("import", help="import a source into a persistent FiftyOne dataset")
    _add_source_args(p)
    p.add_argument("--name", help="dataset name (default: derived from the source path)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable images instead of stopping")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("demo-data", help="write the synthetic demo scenes (COCO JSON + PNGs) or real photos")
    p.add_argument("--out", required=True, type=output_folder)
    p.add_argument("--n", type=COUNT, default=100, help="number of scenes")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--size", type=IMAGE_SIZE, default=256, help="scene width and height in pixels (32..8192)")
    p.add_argument("--real", action="store_true", help="write scikit-image's real photos instead")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("infer", help="run a Mask R-CNN over a dataset into a predictions field")
    _add_source_args(p)
    p.add_argument("--field", default=PRED_FIELD)
    p.add_argument("--tags", help="only samples with these tags (comma-separated)")
    p.add_argument("--overwrite", action="store_true", help="predict again samples done by the same model; "
                   "replaces only the model's untouched labels (reviewed labels and deletions are kept)")
    p.add_argument("--batch-size", type=BATCH, default=None,
                   help="images per forward pass (default: 4 on a GPU, 1 on the CPU)")
    p.add_argument("--shard", type=_shard_arg, metavar="I/N", help="only shard I of N (0..N-1), by a hash of the "
                   "sample id: N workers started anywhere cover every sample once")
    p.add_argument("--threads", type=int_in(1, 1024), default=None, metavar="N",
                   help="torch threads on the CPU, fixed (default: this machine's cores shared among the CPU "
                        "runs on it, looked at before each image; fix N for labels reproducible to the bit)")
    _add_engine_args(p)
    _add_launch_args(p)
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("eval", help="COCO mAP of a predictions field (or a results JSON) against GT")
    _add_source_args(p, optional=True)
    p.add_argument("--gt-field", default=GT_FIELD)
    p.add_argument("--pred-field", default=PRED_FIELD)
    p.add_argument("--gt", help="a COCO instances JSON (with --pred)")
    p.add_argument("--pred", help="a COCO results JSON (with --gt)")
    p.add_argument("--iou-type", choices=("segm", "bbox"), default="segm")
    p.add_argument("--eval-key", default=DEFAULT_EVAL_KEY, help="store per-sample/per-label results under this key "
                   "(FiftyOne's conventions); 'none' stores nothing")
    p.add_argument("--iou-thresh", type=fraction(low_open=True), default=0.5, help="IoU of the stored TP/FP/FN matches")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compare", help="compare two prediction fields against the ground truth, per instance")
    _add_source_args(p)
    p.add_argument("--gt-field", default=GT_FIELD)
    p.add_argument("--a", required=True, metavar="FIELD", help="the first prediction field (A)")
    p.add_argument("--b", required=True, metavar="FIELD", help="the second prediction field (B)")
    p.add_argument("--tags", help="only samples with these tags (comma-separated)")
    p.add_argument("--iou-type", choices=("segm", "bbox"), default="segm")
    p.add_argument("--iou-thresh", type=fraction(low_open=True), default=0.5,
                   help="IoU at which a prediction finds a ground-truth instance")
    p.add_argument("--json", action="store_true", help="print metrics, counts and every instance row as JSON")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("train", help="train or fine-tune a Mask R-CNN on a dataset or tagged view")
    _add_source_args(p)
    p.add_argument("--gt-field", default=GT_FIELD)
    p.add_argument("--view-tags", help="train only on samples with these tags (comma-separated)")
    p.add_argument("--base", default="demo", help="CONFIG[:WEIGHTS]: demo, a model folder, zoo name or YAML")
    p.add_argument("--out", required=True, type=output_folder, help="model folder to write")
    p.add_argument("--iters", type=COUNT, default=500)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--batch", type=BATCH)
    p.add_argument("--holdout", type=fraction(high_open=True), default=0.1,
                   help="fraction held out and evaluated at the end, in [0, 1)")
    p.add_argument("--checkpoint-period", type=COUNT, default=500)
    p.add_argument("--log-period", type=COUNT, default=20, help="iterations between loss-log entries")
    p.add_argument("--fp16", action="store_true", help="write half-precision weights (smaller files)")
    p.add_argument("--resume", action="store_true", help="resume from the last checkpoint in OUT/work")
    _add_trust_arg(p)
    _add_launch_args(p)
    p.add_argument("--opts", nargs=argparse.REMAINDER, help="detectron2 config overrides: KEY VALUE ...")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export samples (or tagged ones) as COCO with RLE masks or as FiftyOne")
    _add_source_args(p)
    p.add_argument("--tags", help="only samples with any of these tags (comma-separated)")
    p.add_argument("--label-tags", help="only labels with any of these tags (comma-separated)")
    p.add_argument("--field", default=GT_FIELD,
                   help="label field(s) to export, comma-separated (COCO: one FIELD.json each when several)")
    p.add_argument("--format", choices=("coco", "fiftyone"), default="coco")
    p.add_argument("--out", required=True, help="a new or empty folder")
    p.add_argument("--copy-images", action="store_true", help="copy the images into OUT (default: refer to them)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("app", help="open SOURCE in the FiftyOne App (its server on a loopback port, same database)")
    _add_source_args(p)
    p.add_argument("--port", type=int_in(1, 65535), help="the App server's port (default: a free one)")
    p.add_argument("--tags", help="only samples with these tags (comma-separated)")
    p.add_argument("--view", metavar="NAME", help="a saved view of the dataset to show")
    p.add_argument("--no-browser", action="store_true", help="only print the address")
    p.set_defaults(func=cmd_app)

    p = sub.add_parser("models", help="list the demo model, local models, cached weights and zoo configs")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("desktop", help="register (install) or remove (uninstall) the app launcher, icons and "
                       "COCO JSON file type for the current user (XDG dirs, no root)")
    p.add_argument("action", choices=["install", "uninstall"])
    p.set_defaults(func=cmd_desktop)

    p = sub.add_parser("explain", help="write PNGs of the model's insides for one image: FPN, RPN, ROI Align, mask head")
    p.add_argument("image", help="an image file")
    p.add_argument("--out", required=True, type=output_folder, help="folder for the PNG files")
    p.add_argument("--instance", type=int_in(0), default=0, help="final instance to explain (0: the best)")
    p.add_argument("--proposal", type=int_in(0), help="proposal for the ROI Align view (default: the instance's)")
    p.add_argument("--top-k", type=int_in(1, 10_000), default=50, help="RPN proposals to draw")
    p.add_argument("--level", default="p3", help="FPN level to draw (p2..p6)")
    _add_engine_args(p)
    p.set_defaults(func=cmd_explain)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_library_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    from maskreview.core import store

    store.configure(database_uri=args.database_uri)
    if args.command is None:
        args = parser.parse_args(["open"] if argv is None else [*argv, "open"])
    try:
        if getattr(args, "max_pixels", None):
            from maskreview.core.images import set_max_pixels

            set_max_pixels(args.max_pixels)
        return args.func(args)
    except CancelledError as exc:
        print(f"maskreview: {exc}", file=sys.stderr)
        return 130
    except MaskreviewError as exc:
        print(f"maskreview: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        lost = store.lost_database(exc)  # mongod died or the shared MongoDB went away mid-command
        if lost is None:
            raise
        store.forget_lost_database()
        print(f"maskreview: error: {one_line(lost)}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
