"""Evaluation and failure analysis (Qt-free).

- ``coco``: dataset fields or COCO files -> pycocotools' COCOeval (``evaluate``, ``evaluate_files``)
- ``reading``: detections read in bulk from the database, as columns
- ``results``: one evaluation run as tables of GT / prediction outcomes (``compute``)
- ``runs``: the run stored the FiftyOne way under an eval key (``evaluate_and_store``)
- ``matching``: COCO's greedy matching for any threshold, live per sample (``SampleMatcher``)
- ``analysis``: per-class table, PR curves, confusion matrix, sorting, failure groups
- ``tide``: TIDE-style error breakdown; ``boundary``: boundary IoU and the disagreement band
- ``synthetic``: perturbed-GT predictions with a known error structure
"""

from maskreview.core.evaluation.coco import (  # noqa: F401
    STAT_NAMES,
    CocoInputs,
    coco_inputs,
    evaluate,
    evaluate_files,
    per_class_ap,
    run_cocoeval,
    summary,
)
from maskreview.core.evaluation.results import EvalResults, compute  # noqa: F401
from maskreview.core.evaluation.runs import evaluate_and_store, store  # noqa: F401
