"""The loupe repaints after an edit only where the edit shows in it: labels patched in place
elsewhere in the image leave it as it is (a dense scene's edit step, #17.3); a patch in its view,
another sample or a style change repaint it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import QEvent, QObject

from maskreview.gui.canvas import overlay as ov

H = W = 400


class Paints(QObject):
    def __init__(self):
        super().__init__()
        self.count = 0

    def eventFilter(self, obj, event):  # noqa: N802
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def _fields() -> dict:
    insts = []
    for k, (y, x) in enumerate((y, x) for y in range(10, H - 40, 50) for x in range(10, W - 40, 50)):
        mask = np.zeros((30, 30), bool)
        mask[3:-3, 3:-3] = True
        insts.append(ov.Instance("ground_truth", f"g{k}", "cell", None, x, y, 30, 30, mask))
    return {"ground_truth": insts}


def _grown(fields: dict, k: int) -> dict:
    insts = list(fields["ground_truth"])
    mask = np.ones((30, 30), bool)
    insts[k] = replace(insts[k], mask=mask, _area=None, _edges=None)  # same id: patched in place
    return {"ground_truth": insts}


def test_the_loupe_repaints_for_a_patch_in_its_view_only(qtbot):
    from maskreview.gui.canvas import ImageCanvas
    from maskreview.gui.canvas.loupe import Loupe
    from maskreview.gui.canvas.sample import SampleData

    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 400)
    canvas.show()
    loupe = Loupe(canvas)
    qtbot.addWidget(loupe)
    loupe.resize(160, 160)
    loupe.show()
    qtbot.waitExposed(loupe)
    image = np.full((H, W, 3), 50, np.uint8)
    fields = _fields()

    def show(sample_id: str, f: dict) -> None:
        canvas.set_sample(SampleData(sample_id, f"{sample_id}.png", image, None, H, W, f), keep_view=True)

    show("s", fields)
    loupe.follow(25, 25)  # label g0 under it (10..40): 20 image pixels across at 8x
    paints = Paints()
    loupe.installEventFilter(paints)

    def painted(step) -> bool:
        qtbot.wait(20)
        before = paints.count
        step()
        qtbot.wait(50)
        return paints.count > before

    far = len(fields["ground_truth"]) - 1  # the label at the other corner
    assert not painted(lambda: show("s", _grown(fields, far)))
    assert canvas.changed_rects  # the patch's boxes
    assert painted(lambda: show("s", _grown(_grown(fields, far), 0)))  # in its view
    assert painted(lambda: show("other", fields))  # another sample
    assert canvas.changed_rects is None
    assert painted(lambda: canvas.set_style(opacity=0.8))
