"""The questions an edit asks before it is applied, so that nothing is chosen silently.

- A new brush or polygon instance asks for its class (the class last chosen is preselected).
- Relabel lists the dataset's classes; a name that is not a class yet needs confirming.
- Promote warns when a ground truth of the same class already covers the prediction (mask IoU
  >= :data:`DUPLICATE_IOU`) and offers to replace it, keep both, or cancel.

The dialogs are modal; tests answer them as a user would (``QApplication.activeModalWidget``).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from maskreview.gui.canvas import overlay as ov
from maskreview.gui.class_picker import ask_class

DUPLICATE_IOU = 0.5
REPLACE, KEEP_BOTH = "replace", "keep both"


class EditPrompts:
    """Asks for classes and confirmations; remembers the class last chosen."""

    def __init__(self, parent: QWidget, classes: Callable[[], list[str]]):
        self.parent = parent
        self.classes = classes
        self.last_class: str | None = None

    def class_for_new(self, selected_label: str | None = None) -> str | None:
        """The class of a new instance, asked every time; ``None`` when cancelled (nothing is added)."""
        classes = self.classes()
        preselect = self.last_class or selected_label or (classes[0] if classes else None)
        return self._remember(ask_class(classes, preselect, self.parent, "New instance",
                                        "Class of the new instance:"))

    def relabel_class(self, current: str) -> str | None:
        return self._remember(ask_class(self.classes(), current, self.parent, "Relabel as…",
                                        f"Relabel '{current}' as:"))

    def _remember(self, name: str | None) -> str | None:
        if name:
            self.last_class = name
        return name

    def duplicate_answer(self, pred: ov.Instance, duplicates: list[tuple[ov.Instance, float]]) -> str | None:
        """Promote over a ground truth it duplicates: :data:`REPLACE`, :data:`KEEP_BOTH` or ``None``."""
        gt, iou = duplicates[0]
        box = QMessageBox(QMessageBox.Icon.Warning, "Promote a duplicate?",
                          f"The ground truth already has a {gt.label} here (mask IoU {iou:.2f} with this "
                          f"{pred.label} prediction"
                          + (f"; {len(duplicates) - 1} more overlap it" if len(duplicates) > 1 else "") + ").",
                          QMessageBox.StandardButton.Cancel, self.parent)
        box.setInformativeText("Replace it with the prediction, or keep both?")
        replace = box.addButton("Replace it", QMessageBox.ButtonRole.AcceptRole)
        both = box.addButton("Keep both", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(replace)
        box.exec()
        return {replace: REPLACE, both: KEEP_BOTH}.get(box.clickedButton())


def duplicates_in(pred: ov.Instance, ground_truth: list[ov.Instance],
                  min_iou: float = DUPLICATE_IOU) -> list[tuple[ov.Instance, float]]:
    """Ground-truth instances of ``pred``'s class overlapping it with mask IoU >= ``min_iou``,
    the most overlapping first."""
    hits = [(gt, ov.mask_iou(pred, gt)) for gt in ground_truth if gt.label == pred.label]
    return sorted(((gt, iou) for gt, iou in hits if iou >= min_iou), key=lambda hit: -hit[1])
