"""Close the loop: fine-tune the current model on the corrected samples, mAP before and after.

The corrected view is the samples tagged ``reviewed`` (or other tags). The model is evaluated on
that view, fine-tuned from its own weights on it, and evaluated again; the caller (the GUI's
worker, or a script) then decides whether to re-run inference with the new model.
"""

from __future__ import annotations

from pathlib import Path

from maskreview.core.errors import BadInputError
from maskreview.core.fields import GT_FIELD
from maskreview.core.progress import Progress
from maskreview.core.model.training import TrainSettings, evaluate_model_dir, train


def finetune_on_corrected(dataset, model: str, out_dir, tags=("reviewed",), iters: int = 200,
                          gt_field: str = GT_FIELD, batch: int = 2, lr: float | None = None,
                          progress: Progress | None = None, trust_checkpoint: bool = False) -> dict:
    """Train ``model`` (``demo``, a model folder, ``CONFIG:WEIGHTS``) on the samples with
    ``tags``; returns ``{"before": eval, "after": eval, "model_dir", "samples", "training"}``
    where each eval is :func:`maskreview.core.evaluation.evaluate`'s dict on that view.
    ``trust_checkpoint`` lets the model's config and weights hold Python objects (runs their code)."""

    view = dataset.match_tags(list(tags))
    if len(view) == 0:
        raise BadInputError(f"no samples tagged {', '.join(tags)} in {dataset.name!r}: review and tag some first")
    has_gt = gt_field in dataset.get_field_schema() and view.count(f"{gt_field}.detections") > 0
    if not has_gt:
        raise BadInputError(f"the samples tagged {', '.join(tags)} have no {gt_field} instances to learn from")
    progress = progress or Progress()
    before = evaluate_model_dir(model, view, gt_field, trust_checkpoint)
    progress.check()
    settings = TrainSettings(iters=iters, batch=batch, lr=lr, holdout=0.0, checkpoint_period=max(iters, 1) * 10,
                             trust_checkpoint=trust_checkpoint)
    report = train(view, gt_field, model, out_dir, settings, progress=progress)
    after = evaluate_model_dir(Path(out_dir).resolve(), view, gt_field)
    return {"before": before, "after": after, "model_dir": str(Path(out_dir).resolve()), "samples": len(view),
            "training": report}
