"""Model-assisted correction in the window (core/model/assist.py does the work):

- Box → mask tool (Shift+M): drag a box; the current model's ROI heads predict the mask for it.
  With a label selected the box is that label's corrected box (its class, its mask replaced);
  with none, a new ground-truth instance of the box head's class. A click selects.
- Refine mask (Ctrl+M): the mask head again on the selected label's box.
- Snap to edges (Ctrl+G): GrabCut seeded from the selected mask and its box.
- Edge-snapping polygon (Shift+S): click vertices; Enter closes it along the image's edges
  (intelligent scissors).

Each result is a proposal drawn over the image: Enter accepts it as one undoable edit, Esc drops
it. Everything runs on a job thread, one request at a time (the latest waits); box -> mask and
refine go to the model worker process (``core.model.worker``: the window never loads the model),
and while the box tool is on the worker computes the image's features ahead of the first box.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen, QPolygonF

from maskreview.core.editing.ops import AddInstance, LabelRef, SetMask
from maskreview.core.fields import GT_FIELD
from maskreview.gui.actions import ActionSpec
from maskreview.gui.canvas.tools import CanvasTool
from maskreview.gui.features.menus import add_action, menu

ENTER, ESC, BACKSPACE = (Qt.Key.Key_Return, Qt.Key.Key_Enter), Qt.Key.Key_Escape, Qt.Key.Key_Backspace
PROPOSAL_COLOR = (0, 255, 200)
KEY_ROWS = [
    ("Box → mask", "Drag a box: the model's mask for it (a label selected: its corrected box)", "Drag"),
    ("Proposals", "Accept the proposed mask (one undo step) / drop it", "Enter / Esc"),
    ("Edge polygon", "Add a vertex / close along the edges / remove the last", "Click / Enter / Backspace"),
]


_NONE = object()


def _fill_image(bitmap: np.ndarray):
    from maskreview.gui.canvas.view import qimage_from_layer

    layer = np.zeros((*bitmap.shape, 4), np.uint8)
    a = 0.35
    r, g, b = PROPOSAL_COLOR
    layer[bitmap] = (b * a, g * a, r * a, 255 * a)
    return qimage_from_layer(layer)


def _outline(bitmap: np.ndarray) -> QPainterPath:
    from maskreview.gui.canvas.overlay import edge_segments
    from maskreview.gui.canvas.view import segments_path

    return segments_path(*edge_segments(bitmap))


class AssistTool(CanvasTool):
    """Draws boxes or edge-snapping polygons, and shows the proposal waiting for Enter / Esc."""

    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, feature, mode: str):
        super().__init__()
        self.feature, self.mode = feature, mode
        self.name = "box_mask" if mode == "box" else "scissors"
        self._start: QPointF | None = None
        self._end: QPointF | None = None
        self.points: list[QPointF] = []

    def deactivate(self) -> None:
        self._start = self._end = None
        self.points = []
        super().deactivate()

    def press(self, pos, event) -> bool:
        if event.button() != Qt.MouseButton.LeftButton or self.canvas is None:
            return False
        if self.mode == "scissors":
            self.points.append(pos)
            self.canvas.viewport().update()
            return True
        self._start = self._end = pos
        return True

    def double_click(self, pos, event) -> bool:
        if self.mode == "scissors" and len(self.points) >= 3:
            self.feature.request_scissors([(p.x(), p.y()) for p in self.points])
            self.points = []
            return True
        return self.press(pos, event)

    def move(self, pos, event) -> bool:
        if self._start is None:
            return False
        self._end = pos
        self.canvas.viewport().update()
        return True

    def release(self, pos, event) -> bool:
        if self._start is None or event.button() != Qt.MouseButton.LeftButton:
            return False
        start, self._start, self._end = self._start, None, None
        rect = QRectF(start, pos).normalized()
        if rect.width() < 3 and rect.height() < 3:  # a click: select what is under it
            self.canvas.click_select(pos.x(), pos.y())
        else:
            self.feature.request_box((rect.left(), rect.top(), rect.right(), rect.bottom()))
        self.canvas.viewport().update()
        return True

    def wants_key(self, event) -> bool:
        if self.feature.proposal is not None and event.key() in (*ENTER, ESC):
            return True
        return self.mode == "scissors" and bool(self.points) and event.key() in (*ENTER, ESC, BACKSPACE)

    def key_press(self, event) -> bool:
        key = event.key()
        if self.mode == "scissors" and self.points and self.feature.proposal is None:
            if key in ENTER and len(self.points) >= 3:
                self.feature.request_scissors([(p.x(), p.y()) for p in self.points])
            elif key == BACKSPACE:
                self.points.pop()
                self.canvas.viewport().update()
                return True
            if key in ENTER or key == ESC:
                self.points = []
                self.canvas.viewport().update()
            return True
        return self.feature.proposal_key(key)

    def paint(self, painter, exposed) -> None:
        dpr = self.canvas.devicePixelRatioF() if self.canvas is not None else 1.0
        pen = QPen(QColor(*PROPOSAL_COLOR), 1.5 * dpr, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        painter.setPen(pen)
        if self._start is not None and self._end is not None:
            painter.drawRect(QRectF(self._start, self._end).normalized())
        if self.points:
            painter.drawPolyline(QPolygonF(self.points))
        self.feature.paint_proposal(painter, dpr)


class AssistFeature:
    def __init__(self, window, state):
        self.window, self.state = window, state
        self.proposal = None  # core.model.assist.Proposal shown, waiting for Enter / Esc
        self.target: LabelRef | None = None  # the label the proposal would replace (None: a new one)
        self.proposal_sample: str | None = None
        self._path: QPainterPath | None = None
        self._fill = None  # QImage: the proposal's pixels, translucent
        self._job = None
        self._next = None  # the request waiting for the running one
        self._warmed = None
        self.box_tool, self.scissors_tool = AssistTool(self, "box"), AssistTool(self, "scissors")
        self._previous_tool = _NONE  # the tool to go back to after a proposal that another tool asked for
        self.after_accept: list = []  # callables (field, label id) told of each accepted proposal (review queue)
        edit = menu(window, "&Review")
        edit.addSeparator()
        add_action(window, ActionSpec("tool_box_mask", "Box → mask (model) tool", ("Shift+M",), "Review",
                                      checkable=True, tip="Drag a box: the current model predicts its mask"),
                   lambda: self.use_tool(self.box_tool), edit)
        add_action(window, ActionSpec("tool_scissors", "Edge-snapping polygon tool", ("Shift+S",), "Review",
                                      checkable=True, tip="Click vertices; Enter closes the polygon along edges"),
                   lambda: self.use_tool(self.scissors_tool), edit)
        add_action(window, ActionSpec("refine_mask", "Refine mask with the model", ("Ctrl+M",), "Review",
                                      tip="The mask head again on the selected label's box"), self.refine, edit)
        add_action(window, ActionSpec("grabcut", "Snap mask to edges (GrabCut)", ("Ctrl+G",), "Review",
                                      tip="GrabCut seeded from the selected mask and its box"), self.grabcut, edit)
        from maskreview.gui import actions as acts

        acts.KEY_HINTS.extend(row for row in KEY_ROWS if row not in acts.KEY_HINTS)
        window.sample_changed.connect(self._sample_changed)

    # ------------------------------------------------------------------ tools
    def use_tool(self, tool: AssistTool) -> None:
        window = self.window
        if window.canvas.tool is not tool:
            self._previous_tool = _NONE
            window.canvas.set_tool(tool)
        window.canvas.setFocus()
        for key, action in window.actions_.items():
            if key.startswith("tool_"):
                action.setChecked(key == f"tool_{tool.name}")
        if tool.mode == "box":
            self._warm()
            window.statusBar().showMessage("Box → mask: drag a box around an object (a label selected: its "
                                           "corrected box); Enter accepts the proposal, Esc drops it", 8000)
        else:
            window.statusBar().showMessage("Edge polygon: click vertices, Enter closes it along the edges", 8000)

    def _sample_changed(self, sample_id) -> None:
        if self.proposal is not None and sample_id != self.proposal_sample:
            self.drop()
        if self.window.canvas.tool is self.box_tool:
            self._warm()

    # ------------------------------------------------------------------ requests
    def _image(self):
        data = self.window.canvas.data
        if data is None or data.sample_id is None or data.image is None:
            self.window.statusBar().showMessage("Open a dataset sample first (proposals edit dataset labels)", 5000)
            return None
        return data

    def _selected(self):
        data, inst = self.window.canvas.data, self.window.canvas.selected_instance
        if inst is None or data is None:
            return None, None
        from maskreview.gui.canvas.edit_tools import full_bitmap

        return LabelRef(data.sample_id, inst.field, inst.id), (inst, full_bitmap(inst, data.height, data.width))

    def _call(self, op: str, progress, path: str, **args):
        """``op`` in the model worker (the window never loads the model), with the window's model."""
        from dataclasses import replace

        from maskreview.core.errors import MaskreviewError
        from maskreview.gui import workers

        w = self.window
        runs = getattr(w, "model_runs", None)
        model = dict(model=w.model_name, weights=runs.weights if runs is not None else None,
                     settings=replace(w.engine_settings),
                     trust_checkpoint=bool(runs is not None and runs.trust_checkpoint))
        try:
            return w.model_worker.call(op, progress, path=path, **model, **args)
        except workers.WorkerCrashed as exc:
            raise MaskreviewError(workers.crash_message(exc, None)) from exc

    def request_box(self, box) -> None:
        data = self._image()
        if data is None:
            return
        ref, selected = self._selected()
        label = selected[0].label if selected is not None else None
        path = data.filepath

        def fn(progress):
            return self._call("assist_mask", progress, path, box=tuple(float(v) for v in box), label=label)

        self._run(fn, "box → mask", data.sample_id, ref)

    def refine(self) -> None:
        data = self._image()
        ref, selected = self._selected()
        if data is None or selected is None:
            self.window.statusBar().showMessage("Select a label to refine (click it)", 5000)
            return
        inst, bitmap = selected
        path = data.filepath

        def fn(progress):
            from maskreview.core.errors import BadInputError
            from maskreview.core.model.assist import tight_box

            box = tight_box(bitmap)
            if box is None:
                raise BadInputError("the selected label has no pixels to refine")
            return self._call("assist_mask", progress, path, box=tuple(float(v) for v in box), label=inst.label,
                              kind="refine")

        self._run(fn, "refine mask", data.sample_id, ref)

    def grabcut(self) -> None:
        data = self._image()
        ref, selected = self._selected()
        if data is None or selected is None:
            self.window.statusBar().showMessage("Select a label to snap to the edges (click it)", 5000)
            return
        image, bitmap = data.image, selected[1]

        def fn(progress):
            from maskreview.core.model.assist import grabcut_refine

            return grabcut_refine(image, bitmap)

        self._run(fn, "GrabCut", data.sample_id, ref)

    def request_scissors(self, points) -> None:
        data = self._image()
        if data is None:
            return
        ref, _ = self._selected()
        image = data.image

        def fn(progress):
            from maskreview.core.model.assist import scissors_polygon

            return scissors_polygon(image, points)

        self._run(fn, "edge polygon", data.sample_id, ref)

    def _warm(self) -> None:
        data = self.window.canvas.data
        if data is None or data.image is None or self._warmed == data.filepath or self._job is not None:
            return
        self._warmed = path = data.filepath

        def fn(progress):
            self._call("assist_warm", progress, path)

        self._start(fn, "model features", None, None, quiet=True)

    def _run(self, fn, name: str, sample_id: str, target) -> None:
        if self._job is not None:  # one at a time: this one waits (and replaces any waiting before it)
            self._next = (fn, name, sample_id, target)
            return
        self.window.statusBar().showMessage(f"{name}…", 0)
        self._start(fn, name, sample_id, target)

    def _start(self, fn, name, sample_id, target, quiet: bool = False) -> None:
        from maskreview.gui import workers

        job = workers.Job(fn, name)
        self._job = job
        job.finished.connect(self._finished)
        if not quiet:
            job.succeeded.connect(lambda proposal: self._show(proposal, sample_id, target, name))
        self.window._start_job(job, None, track=not quiet)

    def _finished(self) -> None:
        self._job = None
        if self._next is not None:
            request, self._next = self._next, None
            self._run(*request)

    # ------------------------------------------------------------------ the proposal
    def _show(self, proposal, sample_id: str, target, name: str) -> None:
        if self.window.current_sample_id != sample_id:
            return  # the reviewer moved on
        if proposal.empty:
            self.window.statusBar().showMessage(f"{name}: the result has no pixels; nothing to propose", 6000)
            return
        self.proposal, self.proposal_sample, self.target = proposal, sample_id, target
        self._path = _outline(proposal.bitmap)
        self._fill = _fill_image(proposal.bitmap)
        if self.window.canvas.tool not in (self.box_tool, self.scissors_tool):
            self._previous_tool = self.window.canvas.tool
            self.window.canvas.set_tool(self.box_tool)  # it takes Enter / Esc for the proposal
        self.window.canvas.setFocus()
        what = f"replaces the mask of {target.field} label" if target is not None else f"a new {GT_FIELD} instance"
        label = f" {proposal.label}" + (f" ({proposal.score:.2f})" if proposal.score is not None else "")
        self.window.statusBar().showMessage(
            f"{name} proposal{label}: {what}, {int(proposal.bitmap.sum())} px in {proposal.seconds:.2f} s — "
            "Enter accepts, Esc drops", 0)
        self.window.canvas.viewport().update()

    def paint_proposal(self, painter, dpr: float) -> None:
        if self.proposal is None or self._path is None:
            return
        painter.drawImage(QPointF(0, 0), self._fill)
        pen = QPen(QColor(0, 0, 0), 4.0 * dpr)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.drawPath(self._path)
        pen = QPen(QColor(*PROPOSAL_COLOR), 2.0 * dpr)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.drawPath(self._path)

    def proposal_key(self, key) -> bool:
        if self.proposal is None:
            return False
        if key in ENTER:
            self.accept()
        elif key == ESC:
            self.drop()
            self.window.statusBar().showMessage("proposal dropped", 3000)
        return True

    def accept(self):
        proposal, target, sid = self.proposal, self.target, self.proposal_sample
        if proposal is None:
            return None
        self._clear()
        if target is not None:
            op = SetMask(target, proposal.bitmap)
        else:
            label = proposal.label or (self.window.classes[0] if self.window.classes else "object")
            op = AddInstance(sid, GT_FIELD, label, bitmap=proposal.bitmap)
        change = self.window.edits.apply(op) if self.window.edits is not None else None
        if change is not None:
            field, label_id = (target.field, target.label_id) if target is not None else (GT_FIELD, op.label_id)
            self.window.canvas.select_label(field, label_id)
            self.window.statusBar().showMessage(f"{proposal.kind} proposal accepted (Ctrl+Z undoes it)", 5000)
            for told in list(self.after_accept):
                told(field, label_id)
        return change

    def drop(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self.proposal, self.target, self._path, self._fill = None, None, None, None
        if self._previous_tool is not _NONE and self.window.canvas.tool is self.box_tool:
            self.window.canvas.set_tool(self._previous_tool)
        self._previous_tool = _NONE
        self.window.canvas.viewport().update()
