"""The selected label in words: what the Selection panel lists and the status bar says (Qt-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

from maskreview.core.fields import REVIEW_ADDED, SOURCE_FIELD

OUTCOME_WORDS = {"tp": "TP (true positive)", "fp": "FP (false positive)", "fn": "FN (missed ground truth)",
                 "ignored": "ignored (crowd or beyond 100 per class)", "below": "under the confidence threshold"}


@dataclass
class LabelFacts:
    """What is known of one label: from the canvas instance, its document and the live match."""

    field: str
    label: str
    score: float | None
    area: int
    box: tuple[int, int, int, int]  # x0, y0, w, h in pixels
    model: str | None = None  # the model that wrote the field (its provenance record, as words)
    outcome: str | None = None  # at the thresholds, matched live; None: no evaluation loaded
    thresholds: tuple[float, float] | None = None
    match: tuple[str, str] | None = None  # (field, class) of the matched label
    mask_iou: float | None = None
    boundary_iou: float | None = None
    tags: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)


def short(facts: LabelFacts) -> str:
    """``predictions: square 0.66`` (the status bar's words for a label)."""
    score = f" {facts.score:.2f}" if facts.score is not None else ""
    return f"{facts.field}: {facts.label}{score}"


def describe(facts: LabelFacts) -> list[tuple[str, str]]:
    """``(what, value)`` rows, the first one the label itself."""
    rows = [("label", f"{facts.label} in {facts.field}")]
    if facts.model:
        rows.append(("model", facts.model))
    rows.append(("score", f"{facts.score:.3f}" if facts.score is not None else "none (drawn or imported, not predicted)"))
    x0, y0, w, h = facts.box
    rows.append(("area", f"{facts.area} px, box {w}×{h} at ({x0}, {y0})"))
    if facts.outcome is None:
        rows.append(("evaluation", "none yet (Evaluate ▸ Evaluate predictions…, Ctrl+Shift+E)"))
    else:
        at = f" at confidence ≥ {facts.thresholds[0]:.2f}, IoU ≥ {facts.thresholds[1]:.2f}" if facts.thresholds else ""
        rows.append(("evaluation", OUTCOME_WORDS.get(facts.outcome, facts.outcome) + at))
    if facts.match is not None:
        ious = [f"mask IoU {facts.mask_iou:.3f}" if facts.mask_iou is not None else None,
                f"boundary IoU {facts.boundary_iou:.3f}" if facts.boundary_iou is not None else None]
        rows.append(("matched", f"{facts.match[1]} in {facts.match[0]}" + "".join(f", {t}" for t in ious if t)))
    else:
        rows.append(("matched", "nothing overlaps it in another field"))
    rows.append(("tags", ", ".join(facts.tags) if facts.tags else "none"))
    rows.append(("history", "; ".join(facts.history) if facts.history else "not edited"))
    return rows


def stored_history(doc: dict | None, snapshot: dict | None) -> list[str]:
    """What a label's document says of its review: added, promoted, or edited (its pre-review
    snapshot in ``<field>_original``)."""
    out = []
    doc = doc or {}
    if doc.get(SOURCE_FIELD):
        out.append(f"promoted from {doc[SOURCE_FIELD]}")
    elif doc.get(REVIEW_ADDED):
        out.append("added in review")
    if snapshot is not None:
        was = snapshot.get("label")
        out.append("edited in review" + (f" (was {was})" if was and was != doc.get("label") else ""))
    return out
