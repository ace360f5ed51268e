"""The review state: what the reviewer sees, filters, selects and at which thresholds (Qt-free).

Modelled on napari's ``ViewerModel``: plain evented data (psygnal) that every panel observes and
none copies. Panels change it by assignment or through its methods; each field has a signal,
``state.<group>.events.<field>.connect(callback)`` (callbacks get ``(new, old)``), and a group's
``events.all`` fires on any of its fields.

- ``Filters``: the browser's view of the dataset: filename search, tag, class (field, label),
  named sample-id restrictions (an evaluation drill-down, a saved view), the labels an outside
  filter restricts the canvas to, and the sort order;
- ``Thresholds``: ONE confidence and ONE IoU threshold for the canvas, the histogram and the
  evaluation's live counts;
- ``Display``: visible fields and classes, the colour mode;
- ``ReviewState``: the dataset, its samples, the current sample, the selected and the hovered
  label, the evaluation, and the groups above.
"""

from __future__ import annotations

import operator
from itertools import repeat
from dataclasses import dataclass, field

import numpy as np
from psygnal import evented

from maskreview.core.editing.ops import LabelRef
from maskreview.core.store import reader

COLOR_MODES = ("class", "field", "eval", "errors")  # errors: pairs' missed / added pixels (boundary_errors.py)


@evented
@dataclass
class Filters:
    search: str = ""
    tag: str | None = None
    label_class: tuple[str, str] | None = None  # (field, class): samples with such a label
    sample_ids: dict = field(default_factory=dict)  # name -> frozenset of allowed sample ids
    descriptions: dict = field(default_factory=dict)  # name -> what the restriction is, for people
    label_ids: frozenset | None = None  # the canvas shows only these labels (a drill-down)
    order: tuple | None = None  # sample ids in the order to show them (the rest after them)
    order_name: str = ""

    def restrict(self, name: str, ids, description: str = "") -> None:
        """Allow only the samples ``ids`` under ``name`` (None lifts that restriction)."""
        restrictions, descriptions = dict(self.sample_ids), dict(self.descriptions)
        if ids is None:
            restrictions.pop(name, None)
            descriptions.pop(name, None)
        else:
            restrictions[name] = frozenset(ids)
            descriptions[name] = description or name
        self.descriptions = descriptions  # before sample_ids: observers of sample_ids read both
        self.sample_ids = restrictions

    def sort(self, ids, name: str = "sorted") -> None:
        """Show samples in the order of ``ids`` (None: the dataset's)."""
        self.order_name = name if ids is not None else ""
        self.order = tuple(ids) if ids is not None else None

    def clear(self) -> None:
        """Every filter off: all samples in the dataset's order, every label."""
        with self.events.paused():
            self.search = ""
            self.tag = None
            self.label_class = None
            self.descriptions = {}
            self.sample_ids = {}
            self.label_ids = None
            self.order = None
            self.order_name = ""

    @property
    def active(self) -> bool:
        return bool(self.search or self.tag or self.label_class or self.sample_ids
                    or self.label_ids is not None or self.order is not None)

    def describe(self) -> list[str]:
        """The active filters in words (the Clear filters tooltip, the status bar)."""
        out = [f"“{self.search}” in the filename"] if self.search else []
        out += [f"tag {self.tag}"] if self.tag else []
        out += list(self.descriptions.values())
        if self.label_ids is not None:
            out.append(f"{len(self.label_ids)} labels")
        if self.order is not None:
            out.append(self.order_name or "sorted")
        return out


@evented
@dataclass
class Thresholds:
    confidence: float = 0.5  # inference keeps scores down to 0.05 for AP; a reviewer starts from the confident
    iou: float = 0.5


@evented
@dataclass
class Display:
    hidden_fields: frozenset = frozenset()
    hidden_classes: frozenset = frozenset()
    color_mode: str = "class"


_BY_IDENTITY = {name: operator.is_ for name in ("dataset", "evaluation", "rematch", "filters", "thresholds",
                                                 "display")}


@evented(equality_operators=_BY_IDENTITY)
@dataclass(eq=False)
class ReviewState:
    dataset: object = None
    label_fields: tuple = ()
    classes: tuple = ()
    sample_ids: tuple = ()  # every sample, in the dataset's order
    sample_names: tuple = ()  # their file names (the search looks there)
    current_sample: str | None = None
    selection: LabelRef | None = None
    hover: LabelRef | None = None
    evaluation: object = None  # core.evaluation.EvalResults
    rematch: object = None  # core.evaluation.analysis.Rematch of ``evaluation`` at ``thresholds``
    evaluation_note: str = ""  # where the evaluation came from, and whether labels changed since
    filters: Filters = field(default_factory=Filters)
    thresholds: Thresholds = field(default_factory=Thresholds)
    display: Display = field(default_factory=Display)

    # ------------------------------------------------------------------ dataset
    def set_dataset(self, dataset, sample_ids, sample_names, label_fields=(), classes=()) -> None:
        """A dataset opened: every filter, the selection and the evaluation start afresh (the
        dataset is set last: its observers see everything else already new)."""
        self.sample_names = tuple(sample_names)
        self.sample_ids = tuple(sample_ids)
        self.filters.clear()
        self.selection = self.hover = None
        self.current_sample = None
        self.rematch = None
        self.evaluation = None
        self.evaluation_note = ""
        self.label_fields = tuple(label_fields)
        self.classes = tuple(classes)
        self.dataset = dataset

    # ------------------------------------------------------------------ the browser's view
    def visible_sample_ids(self) -> list[str]:
        """The samples the browser shows, in its order (:meth:`visible_positions`)."""
        ids = self.sample_ids
        return [ids[k] for k in self.visible_positions().tolist()]

    def visible_positions(self) -> np.ndarray:
        """Where the samples the browser shows are in ``sample_ids``, in the browser's order:
        search, tag/class/drill-down restrictions, then the sort order (samples it does not rank
        keep the dataset's order, after it).

        With a dataset, the search and the tag are one database query (``store.reader.browse_ids``,
        index-backed); restrictions filter its result, or the smallest restriction is the start.
        The rest is index arithmetic (numpy) over positions, not lists of ids: a sort of 100,000
        samples costs a look-up per ranked id and no more (#17.4)."""
        f = self.filters
        n = len(self.sample_ids)
        text = f.search.strip()
        allowed = sorted(f.sample_ids.values(), key=len)
        if self.dataset is not None and (text or f.tag):
            rows = np.sort(self._positions_of(reader.browse_ids(self.dataset, text, f.tag)))
        elif text:  # no database (a browser of its own): the file names it was given
            low = text.lower()
            rows = np.array([k for k, name in enumerate(self.sample_names) if low in name.lower()], np.int64)
        elif allowed:
            rows = np.sort(self._positions_of(allowed[0]))
        else:
            rows = np.arange(n, dtype=np.int64)
        for ids in allowed:
            keep = np.zeros(n, bool)
            keep[self._positions_of(ids)] = True
            rows = rows[keep[rows]]
        if f.order is not None:  # the ranked ones in their order, then the rest
            ranked = self._order_positions(f.order)
            present = np.zeros(n, bool)
            present[rows] = True
            ranked = ranked[present[ranked]]
            present[ranked] = False
            rows = np.concatenate([ranked, rows[present[rows]]])
        return rows

    def use_positions(self, positions: dict) -> None:
        """``{sample id: its position in sample_ids}`` made elsewhere already (the browser's
        model has it for the same ids): not made again (100,000 ids)."""
        self.__dict__["_positions"] = (self.sample_ids, positions)

    def _position_map(self) -> dict:
        cached = self.__dict__.get("_positions")
        if cached is None or cached[0] is not self.sample_ids:
            cached = (self.sample_ids, {sid: k for k, sid in enumerate(self.sample_ids)})
            self.__dict__["_positions"] = cached
        return cached[1]

    def _positions_of(self, ids) -> np.ndarray:
        """The positions of ``ids`` (those of the dataset's samples) in ``sample_ids``, in ``ids``' order."""
        out = np.fromiter(map(self._position_map().get, ids, repeat(-1)), np.int64)  # map: no generator frame per id
        return out[out >= 0]

    def _order_positions(self, order) -> np.ndarray:
        """``order``'s positions, each sample once (its first place), kept while the order is."""
        cached = self.__dict__.get("_order_cache")
        if cached is None or cached[0] is not order or cached[1] is not self.sample_ids:
            pos = self._positions_of(order)
            _, first = np.unique(pos, return_index=True)
            cached = (order, self.sample_ids, pos[np.sort(first)])
            self.__dict__["_order_cache"] = cached
        return cached[2]

    def show_all(self) -> None:
        """"Show all" / Clear filters: every filter off; the current sample stays current."""
        self.filters.clear()

    def drill_down(self, sample_ids, label_ids, description: str) -> None:
        """Show exactly these samples and labels (an evaluation cell or group); None, None: all."""
        if sample_ids is None and label_ids is None:
            self.filters.restrict("evaluation", None)
            self.filters.label_ids = None
            return
        self.filters.label_ids = frozenset(label_ids) if label_ids is not None else None
        self.filters.restrict("evaluation", sample_ids, description)

    # ------------------------------------------------------------------ labels
    def label_visible(self, field_name: str, label: str, score: float | None, label_id: str | None = None) -> bool:
        """The one rule for whether a label is shown (canvas, thumbnails, histogram): its field
        and class are visible; a drill-down names it; else its score reaches the threshold."""
        d = self.display
        if field_name in d.hidden_fields or label in d.hidden_classes:
            return False
        if self.filters.label_ids is not None:  # labels a drill-down names are shown whatever their score
            return label_id in self.filters.label_ids
        return score is None or score >= self.thresholds.confidence

    def visible_fields(self) -> list[str]:
        return [f for f in self.label_fields if f not in self.display.hidden_fields]

    def select(self, ref: LabelRef | None) -> None:
        self.selection = ref

    def set_current_sample(self, sample_id: str | None) -> None:
        """A new sample on show: its labels replace the selection and hover of the last one."""
        if sample_id != self.current_sample:
            self.hover = None
            if self.selection is not None and self.selection.sample_id != sample_id:
                self.selection = None
        self.current_sample = sample_id
