"""pycocotools called directly on COCO files: the reference the evaluation tests compare with."""

from __future__ import annotations

import contextlib
import io

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def pycocotools_direct(gt_path, res_path, iou_type: str):
    """``COCO(gt)`` + ``loadRes`` + ``evaluate/accumulate/summarize``, as pycocotools' own example."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        e = COCOeval(gt, gt.loadRes(str(res_path)), iou_type)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e
