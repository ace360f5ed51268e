"""Badges on the browser's thumbnails: the sample's tags, whether it is reviewed, and its false
positive / false negative counts from the stored evaluation (``<eval key>_fp`` / ``_fn``).

:func:`read_badges` reads them in one query; :func:`draw_badges` paints them over a thumbnail
(the browser's delegate calls it); :class:`BadgesFeature` keeps the browser's badges current
(dataset opened, any edit, undo or redo, a finished evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor

from maskreview.core.tagging import REVIEWED

REVIEWED_RGB, TAG_RGB, FP_RGB, FN_RGB = (46, 160, 67), (40, 40, 40), (220, 50, 40), (0, 100, 200)
MAX_TAGS = 3


@dataclass(frozen=True)
class SampleBadge:
    tags: tuple[str, ...] = ()
    fp: int | None = None  # None: no stored evaluation
    fn: int | None = None

    @property
    def reviewed(self) -> bool:
        return REVIEWED in self.tags

    def chips(self) -> list[tuple[str, tuple[int, int, int]]]:
        """(text, colour) per chip, in drawing order."""
        out = [("✓ reviewed", REVIEWED_RGB)] if self.reviewed else []
        others = [t for t in self.tags if t != REVIEWED]
        out += [(t, TAG_RGB) for t in others[:MAX_TAGS]]
        if len(others) > MAX_TAGS:
            out.append((f"+{len(others) - MAX_TAGS}", TAG_RGB))
        if self.fp:
            out.append((f"FP {self.fp}", FP_RGB))
        if self.fn:
            out.append((f"FN {self.fn}", FN_RGB))
        return out


def read_badges(dataset, eval_key: str | None = None, ids=None) -> dict[str, SampleBadge]:
    """``{sample id: SampleBadge}`` for ``ids`` (default: every sample), one query."""
    view = dataset.select(list(ids)) if ids is not None else dataset
    schema = dataset.get_field_schema()
    counted = bool(eval_key) and f"{eval_key}_fp" in schema and f"{eval_key}_fn" in schema
    paths = ["id", "tags"] + ([f"{eval_key}_fp", f"{eval_key}_fn"] if counted else [])
    columns = view.values(paths)
    fps, fns = (columns[2], columns[3]) if counted else ([None] * len(columns[0]),) * 2
    return {str(sid): SampleBadge(tuple(tags or ()), fp, fn)
            for sid, tags, fp, fn in zip(columns[0], columns[1], fps, fns)}


def draw_badges(painter, box: QRect, badge: SampleBadge | None, metrics) -> None:
    """The chips of ``badge`` along the bottom of the thumbnail ``box``, left to right, wrapping
    upwards when the row is full."""
    if badge is None:
        return
    x, bottom = box.left() + 2, box.bottom() - 2
    for text, (r, g, b) in badge.chips():
        chip = metrics.boundingRect(text).adjusted(-3, -1, 3, 1)
        if x + chip.width() > box.right() - 2 and x > box.left() + 2:  # next row up
            x, bottom = box.left() + 2, bottom - chip.height() - 2
        chip.moveBottomLeft(QPoint(x, bottom))
        painter.fillRect(chip, QColor(r, g, b, 215))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, text)
        x += chip.width() + 2


class BadgesFeature:
    """Keeps ``window.browser.model.sample_badges`` current."""

    def __init__(self, window, evaluation=None):
        self.window = window
        window.dataset_changed.connect(lambda _dataset: self.refresh())
        window.undo_stack.indexChanged.connect(lambda _index: self.refresh(self._touched()))
        dock = getattr(evaluation, "dock", None)
        if dock is not None and hasattr(dock, "results_changed"):
            dock.results_changed.connect(lambda _results: self.refresh())

    def _touched(self) -> list[str]:
        """The samples an edit can have changed: the one on show and those selected in the browser."""
        window = self.window
        ids = set(window.browser.selected_ids())
        if window.current_sample_id is not None:
            ids.add(window.current_sample_id)
        return sorted(ids)

    def refresh(self, ids=None) -> None:
        window = self.window
        model = window.browser.model
        if window.dataset is None:
            model.sample_badges = {}
        else:
            badges = read_badges(window.dataset, getattr(window, "eval_key", None), ids)
            model.sample_badges = badges if ids is None else {**model.sample_badges, **badges}
        window.browser.view.viewport().update()
