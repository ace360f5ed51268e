"""pycocotools called directly on COCO files: the reference the evaluation tests compare with."""

from __future__ import annotations

import contextlib
import io

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maskreview.core.progress import Progress


def pycocotools_direct(gt_path, res_path, iou_type: str):
    """``COCO(gt)`` + ``loadRes`` + ``evaluate/accumulate/summarize``, as pycocotools' own example."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        e = COCOeval(gt, gt.loadRes(str(res_path)), iou_type)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


@contextlib.contextmanager
def perturbed_demo(demo_coco, name: str, seed: int):
    """The demo COCO set as a dataset with perturbed-GT predictions (``synthetic``); deleted after."""
    from maskreview.core.evaluation import synthetic
    from maskreview.core.sources import open_source
    from maskreview.core.store import connect

    dataset = open_source(demo_coco, name=name)
    synthetic.write_perturbed_predictions(dataset, seed=seed)
    try:
        yield dataset
    finally:
        if name in connect().list_datasets():
            dataset.delete()


def documents_but_revisions(dataset) -> list:
    """Every sample document, its revision, writer and modification time aside (a rollback or a
    put-back is a new revision, so an editor holding one from before sees it)."""
    from maskreview.core.fields import MODIFIED_FIELD, REV_BY_FIELD, REV_FIELD
    from maskreview.core.store import reader

    return [{k: v for k, v in d.items() if k not in (REV_FIELD, REV_BY_FIELD, MODIFIED_FIELD)}
            for d in reader.collection(dataset).find({}).sort("_id")]


class CancelsAt(Progress):
    """A progress that asks to cancel at its ``at``-th update (a run's every Cancel point in turn)."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.updates = at, 0

    def on_update(self) -> None:
        self.updates += 1
        if self.updates >= self.at:
            self.cancel()
