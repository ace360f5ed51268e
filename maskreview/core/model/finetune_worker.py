"""Fine-tune in a process of its own (the GUI's Model ▸ Fine-tune), reporting as JSON lines.

    python -m maskreview.core.model.finetune_worker --dataset NAME --base MODEL --out DIR
        [--tags reviewed] [--gt-field ground_truth] [--iters 100] [--lr LR] [--holdout 0.25]

A deterministic part of the tagged samples is held out (:func:`~maskreview.core.model.training.split_ids`,
the split ``train`` itself makes); the base model is evaluated on it first, then ``train``
fine-tunes on the rest and evaluates the new model on the same samples, so "before" and
"after" are measured alike. stdout carries one JSON object per line:

- ``{"event": "stage", "text": ...}``: what runs now;
- ``{"event": "progress", "done": i, "total": n}`` and ``{"event": "loss", "iter": i, "loss": x}``;
- ``{"event": "done", "model_dir", "before", "after", "held_out", "train_samples"}``;
- ``{"event": "error", "message", "kind"}`` (kind: ``input``, ``cancelled`` or ``error``).

A line ``cancel`` on stdin stops the run at the next iteration; the cleanup (scratch evaluation
fields) still runs, and the folder gets no ``model_final.pth``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import traceback

from maskreview.core.fields import GT_FIELD
from maskreview.core.progress import Progress
from maskreview.core.startup import quiet_library_warnings
from maskreview.core.errors import BadInputError, CancelledError, MaskreviewError
from maskreview.core.store import connect
from maskreview.core.model.training import TrainSettings, evaluate_model_dir, split_ids, train

_out = sys.stdout


def emit(event: str, **values) -> None:
    _out.write(json.dumps({"event": event, **values}) + "\n")
    _out.flush()


class LineProgress(Progress):
    """Progress as ``progress`` lines; during training also the loss from detectron2's storage."""

    def __init__(self) -> None:
        super().__init__()
        self._last_iter = 0

    def on_update(self) -> None:
        emit("progress", done=self.done, total=self.total, label=self.label)
        if self.label != "training" or self.done <= self._last_iter:
            return
        try:
            from detectron2.utils.events import get_event_storage

            history = get_event_storage().history("total_loss")
        except (AssertionError, KeyError, ImportError):  # outside the trainer, or no loss yet
            return
        self._last_iter = self.done
        emit("loss", iter=self.done, loss=round(float(history.latest()), 4))


def _listen_for_cancel(progress: Progress, fd: int) -> None:
    received = b""
    while chunk := os.read(fd, 64):
        received += chunk
        if b"cancel" in received:
            progress.cancel()
            return


def _take_stdin() -> int:
    """fd 0 for the cancel listener alone. ``sys.stdin`` becomes /dev/null: the data loader's
    forked workers close ``sys.stdin``, which would wait forever on the lock of a thread
    blocked reading it."""
    fd = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(0, closefd=False)
    return fd


def finetune(dataset_name: str, base: str, out: str, tags: list[str], gt_field: str, iters: int,
             lr: float | None, holdout: float, progress: Progress) -> dict:

    fo = connect()
    if dataset_name not in fo.list_datasets():
        raise BadInputError(f"no dataset named {dataset_name!r}")
    dataset = fo.load_dataset(dataset_name)
    view = dataset.match_tags(tags)
    ids = view.values("id")
    if len(ids) < 2:
        raise BadInputError(f"{len(ids)} sample(s) tagged {', '.join(tags)}: tag at least 2 reviewed samples "
                            "(one is held out to measure the model before and after)")
    if not view.count(f"{gt_field}.detections"):
        raise BadInputError(f"the samples tagged {', '.join(tags)} have no {gt_field} instances to learn from")
    train_ids, held_ids = split_ids(ids, holdout)
    emit("stage", text=f"measuring {base} on {len(held_ids)} held-out sample(s)")
    before = evaluate_model_dir(base, view.select(held_ids, ordered=True), gt_field)
    progress.check()
    emit("stage", text=f"training on {len(train_ids)} sample(s)")
    settings = TrainSettings(iters=iters, lr=lr, holdout=holdout, log_period=max(1, min(20, iters // 20 or 1)),
                             checkpoint_period=iters * 10)
    report = train(view, gt_field, base, out, settings, progress=progress)
    if sorted(report.get("held_out_ids", [])) != sorted(held_ids):  # the split is by id hash: never expected
        raise RuntimeError("training held out other samples than were measured before it")
    report["base_held_out_eval"] = before  # kept beside the new model's numbers for the picker
    with open(os.path.join(report_dir(out), "training.json"), "w") as f:
        json.dump(report, f, indent=1)
    return {"model_dir": report_dir(out), "before": before, "after": report.get("held_out_eval"),
            "held_out": len(held_ids), "train_samples": len(train_ids)}


def report_dir(out: str) -> str:
    return os.path.realpath(os.path.expanduser(out))


def main(argv: list[str] | None = None) -> int:
    global _out
    quiet_library_warnings()
    parser = argparse.ArgumentParser(prog="python -m maskreview.core.model.finetune_worker")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tags", default="reviewed")
    parser.add_argument("--gt-field", default=GT_FIELD)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--holdout", type=float, default=0.25)
    args = parser.parse_args(argv)
    # detectron2 and FiftyOne print to stdout; only our JSON lines may go there
    _out, sys.stdout = sys.stdout, sys.stderr

    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # a core stays free for the window
    progress = LineProgress()
    threading.Thread(target=_listen_for_cancel, args=(progress, _take_stdin()), daemon=True).start()
    try:
        result = finetune(args.dataset, args.base, args.out, [t for t in args.tags.split(",") if t],
                          args.gt_field, args.iters, args.lr, args.holdout, progress)
    except CancelledError as exc:
        emit("error", message=str(exc), kind="cancelled")
        return 1
    except MaskreviewError as exc:
        emit("error", message=str(exc), kind="input")
        return 2
    except Exception as exc:  # the window shows it; the traceback goes to stderr

        traceback.print_exc()
        emit("error", message=f"{type(exc).__name__}: {exc}", kind="error")
        return 1
    emit("done", **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
