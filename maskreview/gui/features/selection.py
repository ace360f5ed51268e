"""The selection shown: the Selection panel describes ``state.selection`` (field, model, class,
score, evaluation outcome, match with mask and boundary IoU, tags, history); the hovered label
goes to the status bar."""

from __future__ import annotations

from shiboken6 import isValid

from maskreview.core.fields import ORIGINAL_OF
from maskreview.core.review.describe import LabelFacts, describe, short, stored_history


class SelectionFeature:
    def __init__(self, window, state):
        self.window, self.state = window, state
        state.events.selection.connect(self.refresh)
        state.events.hover.connect(self._hovered)
        state.thresholds.events.all.connect(self.refresh)
        window.canvas.overlays_changed.connect(self.refresh)  # outcomes matched live, labels redrawn
        window.undo_stack.indexChanged.connect(self.refresh)

    def facts(self, inst, with_document: bool = True) -> LabelFacts:
        """What the panel says of ``inst`` (an instance of the sample on show)."""
        window, canvas = self.window, self.window.canvas
        evaluated = getattr(window, "evaluation", None) is not None and window.evaluation.results is not None
        facts = LabelFacts(inst.field, inst.label, inst.score, inst.area, (inst.x0, inst.y0, inst.w, inst.h))
        runs = getattr(window, "model_runs", None)
        record = runs.models.get(inst.field) if runs is not None else None
        if record:
            from maskreview.core.model.provenance import model_label

            facts.model = model_label(record)
        if evaluated and inst.eval:
            facts.outcome = inst.eval
            facts.thresholds = (self.state.thresholds.confidence, self.state.thresholds.iou)
        match, iou = canvas.match_of(inst)
        if match is not None:
            facts.match, facts.mask_iou = (match.field, match.label), iou
            facts.boundary_iou = _boundary_iou(inst, match, canvas.data)
        if with_document:
            self._read_document(inst, facts)
        return facts

    def _read_document(self, inst, facts: LabelFacts) -> None:
        from maskreview.core.fields import original_field
        from maskreview.gui import queries

        window, sid = self.window, self.state.current_sample
        if window.dataset is None or sid is None:
            return
        snap_field = original_field(inst.field)
        raw = queries.read_samples(window.dataset, [sid], [inst.field, snap_field]).get(sid)
        if raw is None:
            return
        doc = next((d.doc for d in (raw.labels.get(inst.field) or _empty()).detections if d.id == inst.id), None)
        snapshot = next((d.doc for d in (raw.labels.get(snap_field) or _empty()).detections
                         if str(d.doc.get(ORIGINAL_OF)) == inst.id), None)
        facts.tags = list((doc or {}).get("tags") or [])
        facts.history = _session_history(window.undo_stack, inst.id) + stored_history(doc, snapshot)

    def refresh(self, *_changed) -> None:
        if not isValid(self.window) or not self.window.isVisible():  # closed (its dataset may be gone): nothing
            return
        inst = self.window.canvas.selected_instance
        self.window.info_panel.show_selection(describe(self.facts(inst)) if inst is not None else None)

    def _hovered(self, ref, _old=None) -> None:
        inst = self.window.canvas.hovered_instance
        if inst is None:
            return
        facts = self.facts(inst, with_document=False)
        text = f"{short(facts)}, area {inst.area} px"
        if facts.outcome:
            text += f", {facts.outcome.upper()}"
        if facts.mask_iou is not None:
            text += f", IoU {facts.mask_iou:.2f} with {facts.match[1]} in {facts.match[0]}"
        self.window.statusBar().showMessage(text + "  (click to select)", 4000)


def _empty():
    from maskreview.gui.queries import RawDetections

    return RawDetections([])


def _boundary_iou(inst, match, data) -> float | None:
    from maskreview.core.evaluation.boundary import boundary_iou_masks

    if data is None or inst.mask is None or match.mask is None:
        return None
    a, b = (inst.x0, inst.y0, inst.full_mask()), (match.x0, match.y0, match.full_mask())
    return boundary_iou_masks(a, b, data.height, data.width)


def _session_history(stack, label_id: str) -> list[str]:
    """This session's undo steps (done, not undone) that changed the label."""
    out = []
    for i in range(stack.index()):
        change = getattr(stack.command(i), "change", None)
        if change is not None and any(lp.label_id == label_id for p in change.patches for lp in p.labels):
            out.append(stack.command(i).text())
    return out
