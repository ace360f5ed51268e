"""Badges on the browser's thumbnails: the sample's tags, whether it is reviewed, and its false
positive / false negative counts at the review state's ONE confidence and IoU threshold.

The counts are those the evaluation dock counts and the canvas draws: ``state.rematch`` (the
evaluation re-matched at the thresholds), and for a sample matched live on the canvas since
(the one on show, edited or not) that live match. The values an evaluation stored in the
dataset (``<eval key>_fp`` / ``_fn``, at confidence 0, stale after an edit) are never shown.

:func:`read_badges` reads the tags in one query and takes the counts from :func:`counts_at`
(:class:`LazyBadges`: a page of the browser's rows at a time, as they are painted);
:func:`draw_badges` paints them over a thumbnail (the browser's delegate calls it);
:class:`BadgesFeature` keeps the browser's badges current (dataset opened, any edit, undo or redo,
an evaluation, a threshold change, the sample on show matched live).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from PySide6.QtCore import QPoint, QRect, Qt, QTimer
from PySide6.QtGui import QColor
from shiboken6 import isValid

from maskreview.core.store import lost_database
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


def counts_at(results, rematch) -> dict[str, tuple[int, int]]:
    """``{sample id: (FP, FN)}`` of ``results`` re-matched by ``rematch`` (empty without both)."""
    if results is None or rematch is None:
        return {}
    fp, fn = rematch.per_sample["fp"].tolist(), rematch.per_sample["fn"].tolist()
    return {sid: (fp[i], fn[i]) for i, sid in enumerate(results.sample_ids)}


def outcomes_at(results, rematch) -> dict[str, str]:
    """``{label id: "tp" | "fp" | "fn"}`` of ``results`` re-matched by ``rematch`` (the labels the
    canvas colours by evaluation; those under the threshold or ignored are left out)."""
    if results is None or rematch is None:
        return {}
    out = {str(i): o for i, o in zip(results.gt.label_id, rematch.gt_outcome) if o in ("tp", "fn")}
    out.update({str(i): o for i, o in zip(results.pred.label_id, rematch.pred_outcome) if o in ("tp", "fp")})
    return out


def read_badges(dataset, counts: dict | None = None, ids=None) -> dict[str, SampleBadge]:
    """``{sample id: SampleBadge}`` for ``ids`` (each of them), or for every sample that has a
    tag or counts (``ids`` None: a sample missing from the result has no badge). The tags come
    from one query on the ``tags`` index that reads the tagged samples only
    (``store.reader.tags_by_id``: 100,000 samples cost next to nothing when few are tagged, #17.4);
    FP / FN from ``counts`` (``{sample id: (fp, fn)}``; a sample not in it has none)."""
    from maskreview.gui.queries import tags_by_id

    counts = counts or {}
    tags = tags_by_id(dataset, None if ids is None else list(ids))
    wanted = {**dict.fromkeys(counts), **dict.fromkeys(tags)} if ids is None else ids  # counts' order first
    out = {}
    for sid in wanted:
        sid = str(sid)
        fp, fn = counts.get(sid, (None, None))
        out[sid] = SampleBadge(tuple(tags.get(sid) or ()), fp, fn)
    return out


class LazyBadges(Mapping):
    """``{sample id: SampleBadge}`` of a model's samples, read a page of rows at a time as the
    browser paints them (#17.4): opening 100,000 samples reads no tags at all; a thumbnail
    painted reads the tags of the :data:`PAGE` rows around it (one indexed query). Read on the
    GUI thread (the delegate, tests)."""

    PAGE = 256
    OFFLINE_RETRY_S = 5.0  # with the database gone, paint without tags and ask again this much later

    def __init__(self, dataset, counts: dict, model):
        self.dataset, self.counts, self.model = dataset, counts, model
        self._read: dict[str, SampleBadge] = {}
        self._retry_at = 0.0

    def forget(self, ids) -> None:
        """These samples' badges are read again when next asked for (an edit changed them)."""
        for sid in ids:
            self._read.pop(sid, None)

    def recount(self, ids) -> bool:
        """These samples' badges keep the tags read and take their counts from ``counts`` (what
        changed was not their tags: no query); whether any badge changed."""
        changed = False
        for sid in ids:
            badge = self._read.get(sid)
            if badge is not None and (badge.fp, badge.fn) != self.counts.get(sid, (None, None)):
                self._read[sid] = SampleBadge(badge.tags, *self.counts.get(sid, (None, None)))
                changed = True
        return changed

    def _load(self, sid: str) -> None:
        model = self.model
        row = model.row_of.get(sid)
        if row is None:
            ids = [sid]
        else:
            first = row - row % self.PAGE
            ids = [model.sample_id(r) for r in range(first, min(first + self.PAGE, model.rowCount()))]
        self._read.update(read_badges(self.dataset, self.counts, [i for i in ids if i not in self._read]))

    def __getitem__(self, sid: str) -> SampleBadge:
        badge = self._read.get(sid)
        if badge is None:
            if self.model.row_index(sid) is None:
                raise KeyError(sid)
            if time.monotonic() < self._retry_at:
                return SampleBadge((), *self.counts.get(sid, (None, None)))
            try:
                self._load(sid)
            except Exception as exc:
                if lost_database(exc) is None:
                    raise
                # reviewing goes on offline (the journal): a paint must not fail or wait on every row
                self._retry_at = time.monotonic() + self.OFFLINE_RETRY_S
                return SampleBadge((), *self.counts.get(sid, (None, None)))
            badge = self._read[sid]
        return badge

    def __iter__(self):
        return iter(self.model.ids)

    def __len__(self) -> int:
        return len(self.model.ids)


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
    """Keeps the thumbnails current: ``window.browser.model.sample_badges`` at the review state's
    thresholds, and their overlays redrawn when what the canvas shows changes (the confidence
    threshold, the visible fields and classes, the colour mode, a drill-down's labels)."""

    def __init__(self, window, state, evaluation=None):
        self.window, self.state = window, state
        self.redraw = QTimer(window, singleShot=True, interval=150, timeout=self._redraw_thumbnails)
        for signal in (state.thresholds.events.confidence, state.display.events.all, state.filters.events.label_ids):
            signal.connect(lambda *_: self.redraw.start())
        self.live: dict[str, tuple[float, float, int, int]] = {}  # sample id -> (conf, iou, fp, fn) matched live
        window.dataset_changed.connect(lambda _dataset: self.refresh())
        self._undo_index = window.undo_stack.index()
        window.undo_stack.indexChanged.connect(self._undo_stepped)
        window.dataset_changed.connect(self._follow_edits)
        state.events.evaluation.connect(self._evaluation_changed)
        state.events.rematch.connect(self._rematched)  # an evaluation or new thresholds, re-matched
        self._outcomes: tuple = (None, {})  # (the rematch, its outcomes by label id)
        self.live_outcomes: dict[str, tuple] = {}  # sample id -> (conf, iou, {label id: outcome}) matched live
        dock = getattr(evaluation, "dock", None)
        if dock is not None:
            dock.sample_outcomes_changed.connect(self._matched_live)

    def _redraw_thumbnails(self) -> None:
        if isValid(self.window) and self.window.isVisible():
            self.window.browser.model.invalidate()  # each thumbnail draws again as it is next painted

    def _rematched(self, *_changed) -> None:
        self.refresh()
        if self.state.display.color_mode == "eval":
            self.redraw.start()

    def outcomes(self) -> dict[str, str]:
        """``{label id: outcome}`` at the thresholds, for thumbnails coloured by evaluation (thread-safe
        reads): the re-matched evaluation, then the samples matched live on the canvas."""
        rematch = self.state.rematch
        if self._outcomes[0] is not rematch:
            self._outcomes = (rematch, outcomes_at(self.state.evaluation, rematch))
        out = self._outcomes[1]
        th = self.state.thresholds
        live = [o for conf, iou, o in list(self.live_outcomes.values()) if (conf, iou) == (th.confidence, th.iou)]
        return {**out, **{k: v for o in live for k, v in o.items()}} if live and out else out

    def _evaluation_changed(self, *_changed) -> None:
        self.live = {}  # a new evaluation counts the labels as they are now
        self.live_outcomes = {}
        self.refresh()

    def _matched_live(self, sample_id: str, outcomes: dict) -> None:
        """The canvas's sample matched at the thresholds: its badge says what the canvas draws
        (after an edit the evaluation's own counts are those from before it)."""
        values = list(outcomes.values())
        th = self.state.thresholds
        self.live[sample_id] = (th.confidence, th.iou, values.count("fp"), values.count("fn"))
        self.live_outcomes[sample_id] = (th.confidence, th.iou, dict(outcomes))
        self.refresh([sample_id], tags_changed=False)
        if self.state.display.color_mode == "eval":
            self.window.browser.model.invalidate([sample_id])

    def counts(self) -> dict[str, tuple[int, int]]:
        """``{sample id: (FP, FN)}`` at the thresholds: the re-matched evaluation, then the live matches."""
        out = counts_at(self.state.evaluation, self.state.rematch)
        if not out:  # no evaluation, or not yet re-matched at these thresholds
            return out
        th = self.state.thresholds
        out.update({sid: (fp, fn) for sid, (conf, iou, fp, fn) in self.live.items()
                    if (conf, iou) == (th.confidence, th.iou) and sid in out})
        return out

    def _touched(self) -> list[str]:
        """The samples an edit can have changed: the one on show and those selected in the browser."""
        window = self.window
        ids = set(window.browser.selected_ids())
        if window.current_sample_id is not None:
            ids.add(window.current_sample_id)
        return sorted(ids)

    def _follow_edits(self, _dataset=None) -> None:
        edits = getattr(self.window, "edits", None)
        if edits is not None:
            edits.written.connect(self._written)

    def _written(self, change) -> None:
        """A write that moved tags: also one no undo-stack step follows (a conflict answered with
        "keep mine" writes the refused undo or redo again, after its step read the old tags)."""
        if any(p.tags_add or p.tags_remove for p in change.patches):
            self.refresh(change.sample_ids)

    def _undo_stepped(self, index: int) -> None:
        """An edit pushed, undone or redone (or the stack cleared): the touched samples' badges.
        Their tags are read again only when a command stepped over may have changed them (a label
        edit's do or undo leaves tags alone: ~5 ms of query a dense edit step saved, #17.3)."""
        stack, last = getattr(self.window, "undo_stack", None), self._undo_index
        if not isValid(self.window) or stack is None or not isValid(stack):  # the window closing
            return
        self._undo_index = index
        stepped = [stack.command(i) for i in range(min(last, index), max(last, index))]
        tags_changed = not stepped or any(_may_change_tags(c) for c in stepped)
        self.refresh(self._touched(), tags_changed=tags_changed)

    def refresh(self, ids=None, tags_changed: bool = True) -> None:
        """The badges of ``ids`` (None: all) current; ``tags_changed`` False: their tags are known
        to be as read (only the counts are looked up again, and nothing is redrawn if none moved)."""
        window = self.window
        if not isValid(window) or not window.isVisible():  # closed (its dataset may be gone): nothing
            return
        model = window.browser.model
        badges = model.sample_badges
        if window.dataset is None:
            model.sample_badges = {}
        elif ids is None or not isinstance(badges, LazyBadges) or badges.dataset is not window.dataset:
            model.sample_badges = LazyBadges(window.dataset, self.counts(), model)  # read as painted
        else:
            badges.counts = self.counts()
            if tags_changed:
                badges.forget(ids)
            elif not badges.recount(ids):
                return  # nothing a thumbnail shows moved
        window.browser.view.viewport().update()


def _may_change_tags(command) -> bool:
    """Whether an undo-stack command's do or undo can change sample tags: an edit command whose
    patches add or remove none cannot; any other command (a model run, one gone: the stack
    cleared) is taken to."""
    change = getattr(command, "change", None)
    patches = getattr(change, "patches", None)
    return patches is None or any(p.tags_add or p.tags_remove for p in patches)
