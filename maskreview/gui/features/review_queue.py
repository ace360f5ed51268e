"""Evaluate ▸ Review queue: the labels of the current view, likeliest errors first, with one key per
verdict (core/review/queue.py and verdicts.py do the work; this is the window's side).

Stepping through the queue shows each entry's sample, selects its label and frames it with its
counterpart (the matched or overlapping prediction), zoomed to both boxes. A verdict is applied
through the edit controller (journaled, one undo step) and the next entry is shown; undoing it
(Ctrl+Z, History) shows its entry again for another verdict. Fix boundary stays on the label with
the brush (or box -> mask) until the next key; an accepted proposal on the label, or leaving it,
gives back the tool from before the verdict. Progress (labels reviewed
of the queue, of the sample on show and of the dataset's ground truth) is in the status bar and
on the thumbnails.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget
from shiboken6 import isValid

from maskreview.core.fields import GT_FIELD
from maskreview.core.review import verdicts as vd
from maskreview.core.tagging import REVIEWED
from maskreview.gui.actions import ActionSpec
from maskreview.gui.features.menus import add_action, menu

KIND_TEXT = {"missing": "missing label", "class": "wrong class", "boundary": "bad boundary",
             "spurious": "spurious / hard", "hard": "hard", "ok": "agrees"}
KIND_COLOR = {"missing": (0, 116, 217), "class": (240, 18, 190), "boundary": (255, 133, 27),
              "spurious": (255, 65, 54), "hard": (150, 150, 150), "ok": (46, 204, 64)}


class QueuePanel(QWidget):
    """The queue as a table: kind, score, class, reason, verdict; double-click jumps to an entry."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.summary = QLabel("Evaluate ▸ Review queue (Ctrl+Shift+R) orders the labels of the view by how "
                              "likely each is an error.")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["kind", "score", "class", "verdict", "why"])
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keys stay the window's (verdicts)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)

    def fill(self, queue) -> None:
        self.table.setRowCount(len(queue))
        for r, e in enumerate(queue.entries):
            kind = QTableWidgetItem(KIND_TEXT[e.kind])
            kind.setForeground(QColor(*KIND_COLOR[e.kind]))
            cells = [kind, QTableWidgetItem(f"{e.score:.2f}"), QTableWidgetItem(e.label), QTableWidgetItem(""),
                     QTableWidgetItem(e.reason)]
            for c, item in enumerate(cells):
                item.setToolTip(e.reason)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        widest = max(self.table.fontMetrics().horizontalAdvance(t) for t in [*vd.VERDICT_TEXT.values(), "reviewed before"])
        self.table.setColumnWidth(3, max(self.table.columnWidth(3), widest + 12))  # verdicts come later: room for them

    def set_verdict(self, row: int, text: str) -> None:
        item = self.table.item(row, 3)
        if item is not None:
            item.setText(text)

    def show_row(self, row: int) -> None:
        self.table.selectRow(row)
        self.table.scrollToItem(self.table.item(row, 0))


class ReviewQueueFeature:
    def __init__(self, window, state):
        self.window, self.state = window, state
        self.queue = None
        self.index = -1
        self.done: dict[str, str] = {}  # subject label id -> verdict, this queue
        self._verdict_steps: list = []  # (undo command, label id) of this queue's verdicts
        self._stack_index = window.undo_stack.index()
        self._fixing = None  # (label id, the tool before its fix boundary verdict)
        self.per_sample: dict[str, tuple[int, int]] = {}  # reviewed / ground-truth labels of each sample
        self._wanted = False  # the queue was asked for before an evaluation existed
        self.panel = QueuePanel()
        self.dock = window.add_dock(self.panel, "Review queue", "right")
        window.tabifyDockWidget(window.docks["Overlays"], self.dock)  # a tab of the right column's top
        window.docks["Overlays"].raise_()
        self.dock.hide()
        self.progress_label = QLabel()
        window.statusBar().addPermanentWidget(self.progress_label)
        self.panel.table.cellDoubleClicked.connect(lambda row, _col: self.show_entry(row))
        self._progress_timer = QTimer(window, singleShot=True, interval=300, timeout=self._dataset_progress)
        self._dataset_counts = (0, 0)
        state.events.evaluation.connect(self._evaluation_changed)
        state.events.dataset.connect(lambda *_: self.reset())
        # after the editing feature's handler (installed before this one) made the dataset's controller
        window.dataset_changed.connect(self._follow_edits)
        window.undo_stack.indexChanged.connect(self._undo_moved)  # after the undone edit's own refresh
        try:
            self.keys = vd.load_verdict_keys()
        except vd.BadInputError as exc:
            window.statusBar().showMessage(str(exc), 10000)
            self.keys = dict(vd.DEFAULT_VERDICT_KEYS)
        review = menu(window, "&Review")
        add_action(window, ActionSpec("review_queue", "Review &queue", ("Ctrl+Shift+R",), "Evaluate",
                                      tip="The labels of the view, likeliest errors first (evaluates if needed)"),
                   self.open, menu(window, "&Evaluate"))
        review.addAction(window.actions_["review_queue"])
        for verdict in vd.VERDICTS:
            add_action(window, ActionSpec(f"verdict_{verdict}", f"Verdict: {vd.VERDICT_TEXT[verdict]}",
                                          (self.keys[verdict],), "Review", tip=_VERDICT_TIPS[verdict]),
                       lambda v=verdict: self.verdict(v), review)
        add_action(window, ActionSpec("queue_previous", "Previous label in the queue", ("Shift+" + self.keys["skip"],),
                                      "Review"), lambda: self.step(-1), review)
        review.addSeparator()
        from maskreview.gui.canvas.boundary_errors import BoundaryErrors

        self.errors = BoundaryErrors(window.canvas, state)
        self._mode_before = "class"
        add_action(window, ActionSpec("boundary_errors", "Show &boundary errors (missed / added pixels)",
                                      ("Shift+V",), "View", checkable=True,
                                      tip="Each matched pair: blue, what the prediction missed; orange, what it "
                                          "added; with its IoU and boundary IoU (also in the loupe)"),
                   self.toggle_errors, review)
        state.display.events.color_mode.connect(self._color_mode_changed)

    # ------------------------------------------------------------------ boundary errors
    def toggle_errors(self) -> None:
        display = self.state.display
        if display.color_mode == "errors":
            display.color_mode = self._mode_before if self._mode_before != "errors" else "class"
        else:
            self._mode_before = display.color_mode
            display.color_mode = "errors"

    def _color_mode_changed(self, mode, _old=None) -> None:
        self.window.actions_["boundary_errors"].setChecked(mode == "errors")
        if mode == "errors":
            self.window.statusBar().showMessage(self.errors.describe(), 8000)

    # ------------------------------------------------------------------ building
    def reset(self) -> None:
        self.queue, self.index, self.done, self.per_sample = None, -1, {}, {}
        self._verdict_steps, self._fixing = [], None
        self.panel.table.setRowCount(0)
        self.window.browser.model.badges = {}
        self.progress_label.setText("")

    def _follow_edits(self, _dataset=None) -> None:
        edits = self.window.edits
        if edits is not None:
            edits.changed.connect(self._edited)
        self._dataset_counts = (0, 0)
        self._dataset_progress()  # the dataset's labels reviewed, in the status bar from the start

    def _edited(self, sample_ids) -> None:
        """Any edit, undo or redo in the queue's samples: progress and verdicts follow the labels (an
        undone verdict leaves the count and the queue's verdict column; a label tagged reviewed
        another way counts; a deleted one stays done)."""
        if self.queue is None or self.window.dataset is None:
            return
        queued = set(self.queue.sample_ids())
        touched = [s for s in dict.fromkeys(sample_ids) if s in queued]
        if not touched:
            return
        fields = [self.queue.gt_field, self.queue.pred_field]
        existing, reviewed = _label_states(self.window.dataset, touched, fields)
        for row, e in enumerate(self.queue.entries):
            if e.sample_id not in touched:
                continue
            verdict = self.done.get(e.label_id)
            if e.label_id in reviewed and verdict is None:
                self.done[e.label_id] = "reviewed"
                self.panel.set_verdict(row, "reviewed")
            elif verdict is not None and e.label_id in existing and e.label_id not in reviewed:
                del self.done[e.label_id]  # undone (a deleted label stays done)
                self.panel.set_verdict(row, "")
        self.per_sample.update(_sample_progress(self.window.dataset, touched, self.queue.gt_field))
        self._update_badges()
        self._show_progress()
        self._progress_timer.start()

    def _undo_moved(self, index: int) -> None:
        """Undo (Ctrl+Z, or the History panel) took back a verdict of this queue: back to its label,
        selected and framed, for another verdict (the oldest one, when several steps went at once)."""
        stack, before = self.window.undo_stack, self._stack_index
        self._stack_index = index
        if self.queue is None or index >= before or not isValid(stack):  # (a closing window clears its stack)
            return
        undone = [stack.command(i) for i in range(index, min(before, stack.count()))]
        label_id = next((lid for command in undone for step, lid in self._verdict_steps if step is command), None)
        if label_id is not None and self.queue.index_of(label_id) >= 0:
            self.show_entry(self.queue.index_of(label_id))

    def open(self):
        """Build the queue from the state's evaluation, evaluating first when there is none."""
        window = self.window
        self.dock.show()
        self.dock.raise_()
        if self.state.evaluation is None:
            self._wanted = True
            job = window.features.evaluation.evaluate()
            if job is None:
                self._wanted = False
            else:
                self.panel.summary.setText("Evaluating first…")
            return job
        return self._build()

    def _evaluation_changed(self, results, _old=None) -> None:
        if results is not None and (self._wanted or self.queue is not None):
            self._wanted = False
            self._build()

    def _build(self):
        from maskreview.core.review.queue import build_queue
        from maskreview.gui import workers

        results, ids, dataset = self.state.evaluation, self.state.visible_sample_ids(), self.window.dataset
        gt = results.gt_field

        def fn(progress):
            queue = build_queue(results, ids)
            done = _reviewed_ids(dataset, queue.sample_ids(), [gt, results.pred_field])
            return queue, _sample_progress(dataset, queue.sample_ids(), gt), done

        self.panel.summary.setText("Ordering the labels…")
        return self.window._start_job(workers.Job(fn, "review queue"), self._built)

    def _built(self, result) -> None:
        queue, per_sample, reviewed = result
        self.queue, self.index, self._verdict_steps = queue, -1, []
        self.done = {e.label_id: "reviewed before" for e in queue.entries if e.label_id in reviewed}
        self.per_sample = per_sample
        self.panel.fill(queue)
        for row, e in enumerate(queue.entries):
            if e.label_id in self.done:
                self.panel.set_verdict(row, self.done[e.label_id])
        counts = ", ".join(f"{n} {KIND_TEXT[k]}" for k, n in queue.counts().items() if n)
        keys = ", ".join(f"{self.keys[v]} {vd.VERDICT_TEXT[v]}" for v in vd.VERDICTS)
        self.panel.summary.setText(f"{len(queue)} labels in {len(queue.sample_ids())} samples: {counts}.\n"
                                   f"Keys: {keys}; Shift+{self.keys['skip']} back.")
        self._update_badges()
        self._dataset_progress()
        if len(queue):  # where the reviewer left off
            self.show_entry(next((i for i, e in enumerate(queue.entries) if e.label_id not in self.done), 0))

    # ------------------------------------------------------------------ stepping
    @property
    def current(self):
        return self.queue[self.index] if self.queue is not None and 0 <= self.index < len(self.queue) else None

    def step(self, delta: int) -> None:
        if self.queue is None or not len(self.queue):
            self.window.statusBar().showMessage("Open the review queue first (Evaluate ▸ Review queue, Ctrl+Shift+R)",
                                                5000)
            return
        target = self.index + delta
        if not 0 <= target < len(self.queue):
            self.window.statusBar().showMessage("End of the review queue" if delta > 0 else "Start of the queue", 5000)
            return
        self.show_entry(target)

    def show_entry(self, index: int) -> None:
        window, canvas = self.window, self.window.canvas
        self.index = index
        entry = self.queue[index]
        if self._fixing is not None and self._fixing[0] != entry.label_id:
            self._end_fix()  # left the label being fixed: the tool before its fix boundary
        if window.current_sample_id != entry.sample_id:
            window.browser.select_id(entry.sample_id)
            if window.current_sample_id != entry.sample_id:  # filtered out of the browser since
                window.show_sample(entry.sample_id)
        data = canvas.data
        if data is None or data.sample_id != entry.sample_id:
            return
        subject = next((i for i in data.fields.get(entry.field, []) if i.id == entry.label_id), None)
        other = next((i for i in data.fields.get(entry.other_field or "", []) if i.id == entry.other_id), None)
        canvas.select_instance(subject)
        canvas.framed = (other,) if other is not None else ()  # drawn even when under the confidence threshold
        x, y, w, h = entry.box
        canvas.frame_rect(QRectF(x, y, max(w, 1), max(h, 1)))
        self.panel.show_row(index)
        self._say(entry, subject is None)

    def _say(self, entry, gone: bool = False) -> None:
        verdict = self.done.get(entry.label_id)
        what = f"{self.index + 1}/{len(self.queue)} {KIND_TEXT[entry.kind]} ({entry.score:.2f}): {entry.reason}"
        if gone:
            what += " (this label is gone: edited or deleted since)"
        elif verdict:
            what += f" [{vd.VERDICT_TEXT.get(verdict, verdict)}]"  # or "reviewed (before)": no verdict of this queue
        self.window.statusBar().showMessage(what, 0)
        self._show_progress()

    # ------------------------------------------------------------------ verdicts
    def verdict(self, name: str):
        from maskreview.gui.class_picker import ask_class

        window, entry = self.window, self.current
        if entry is None or window.edits is None:
            self.step(0)
            return None
        label = None
        if name == "fix_class":
            label = ask_class(list(window.classes), entry.suggested_label or entry.label, window,
                              title="Fix class", prompt=f"{entry.label} is really:")
            if not label:
                return None
        ops = vd.verdict_ops(entry, name, label, gt_field=self.queue.gt_field)
        if ops:
            stack = window.edits.stack
            depth = stack.index()
            changes = window.edits.apply_many(ops, f"{vd.VERDICT_TEXT[name]} {entry.label}")
            if not changes:  # refused (a conflict, bad input): the controller said why
                return None
            if stack.index() == depth + 1:  # pushed (a verdict that changes nothing is no undo step)
                self._verdict_steps.append((stack.command(depth), entry.label_id))
        if name != "skip":  # the counts followed the edit (_edited)
            self.done[entry.label_id] = name
            self.panel.set_verdict(self.index, vd.VERDICT_TEXT[name])
            self._show_progress()
        if name == "fix_boundary":
            self._fix_boundary(entry)
            return entry
        self.step(1) if self.index + 1 < len(self.queue) else self._say(entry)
        return entry

    def _fix_boundary(self, entry) -> None:
        from maskreview.gui import integration

        window = self.window
        if self._fixing is None or self._fixing[0] != entry.label_id:
            self._fixing = (entry.label_id, window.canvas.tool)
        assist = window.features.assist
        if self._proposal_accepted not in assist.after_accept:
            assist.after_accept.append(self._proposal_accepted)
        integration.set_tool(window, "brush")
        window.canvas.select_label(entry.field, entry.label_id)
        skip = self.keys["skip"]
        window.statusBar().showMessage(
            f"Fix the outline: paint with the brush ([ ] size), or Shift+M and draw a box for box → mask, "
            f"Ctrl+G to snap to edges; then {skip} for the next label", 0)

    def _proposal_accepted(self, field: str, label_id: str) -> None:
        """A box -> mask / refine / GrabCut proposal accepted on the label being fixed: the fix is
        done, the tool is the reviewer's again (the verdict keys and clicks act as before O)."""
        if self._fixing is not None and self._fixing[0] == label_id:
            self._end_fix()
            self.window.statusBar().showMessage(
                f"Boundary fixed (Ctrl+Z undoes it); {self.keys['skip']} or a verdict key for the next label", 0)

    def _end_fix(self) -> None:
        """Back to the tool from before the fix boundary verdict, if a fixing tool is still on."""
        from maskreview.gui import integration

        window, (_, tool) = self.window, self._fixing
        self._fixing = None
        assist, editing = window.features.assist, window.edit_tools
        now = window.canvas.tool
        if now is tool or now not in (editing.get("brush"), assist.box_tool, assist.scissors_tool):
            return  # the reviewer chose another tool meanwhile: theirs
        name = next((n for n, t in editing.items() if t is tool), None)
        if tool is None or name is not None:
            integration.set_tool(window, name)

    # ------------------------------------------------------------------ progress
    def _update_badges(self) -> None:
        model = self.window.browser.model
        model.badges = {sid: f"{r}/{n}" + (" ✓" if r == n else "") for sid, (r, n) in self.per_sample.items() if n}
        self.window.browser.view.viewport().update()

    def _dataset_progress(self) -> None:
        """Count the dataset's reviewed labels on a job thread (two aggregations), then show them."""
        from maskreview.gui import workers

        dataset = self.window.dataset
        if dataset is None or dataset.deleted:
            return
        gt = self.queue.gt_field if self.queue is not None else GT_FIELD
        if gt not in self.window.label_fields:
            self._show_progress()
            return

        def counted(counts, ds=dataset) -> None:
            if self.window.dataset is ds:  # not a dataset opened since
                self._dataset_counts = counts
                self._show_progress()

        self.window._start_job(workers.Job(lambda progress: vd.label_progress(dataset, [gt]), "label progress"),
                               counted, track=False)

    def _show_progress(self) -> None:
        parts = []
        if self.queue is not None:
            parts.append(f"queue {len(self.done)}/{len(self.queue)}")
            sid = self.window.current_sample_id
            if sid in self.per_sample:
                parts.append("sample {}/{}".format(*self.per_sample[sid]))
        done, total = self._dataset_counts
        if total:
            parts.append(f"dataset {done}/{total}")
        self.progress_label.setText(("labels reviewed: " + " · ".join(parts)) if parts else "")


_VERDICT_TIPS = {
    "accept": "The label is right: tag it reviewed (a missing label: add the prediction to the ground truth)",
    "reject": "Delete the label (a prediction: tag it fp), then the next label",
    "fix_class": "Relabel (the model's class first in the list), then the next label",
    "fix_boundary": "Tag reviewed and open the brush on the label (box -> mask: Shift+M)",
    "skip": "The next label in the review queue",
}


def _reviewed_ids(dataset, sample_ids: list[str], fields: list[str]) -> set[str]:
    """Ids of the labels of ``fields`` already tagged reviewed in these samples."""
    if not sample_ids:
        return set()
    view = dataset.select(sample_ids).select_labels(tags=REVIEWED, fields=fields)
    return {i for f in fields for i in view.values(f"{f}.detections.id", unwind=True)}


def _label_states(dataset, sample_ids: list[str], fields: list[str]) -> tuple[set[str], set[str]]:
    """``(ids of the labels of fields in these samples, those of them tagged reviewed)``."""
    existing = {i for f in fields for i in dataset.select(sample_ids).values(f"{f}.detections.id", unwind=True)}
    return existing, _reviewed_ids(dataset, sample_ids, fields)


def _sample_progress(dataset, sample_ids: list[str], gt_field: str) -> dict[str, tuple[int, int]]:
    """``{sample id: (ground-truth labels tagged reviewed, ground-truth labels)}``."""
    if not sample_ids:
        return {}
    ids, tags = dataset.select(sample_ids).values(["id", f"{gt_field}.detections.tags"])
    return {sid: (sum(REVIEWED in (t or []) for t in (per or [])), len(per or [])) for sid, per in zip(ids, tags)}
