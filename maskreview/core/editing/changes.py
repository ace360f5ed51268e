"""What an edit does, exactly: per-sample patches of label documents and tags, and their inverses.

A :class:`Change` is exact and self-contained, so its inverse (undo) is just the change with
before and after swapped, and writing it twice is harmless (the journal replays it after a
crash). :mod:`maskreview.core.editing.resolver` makes changes from ops; the session journals and
writes them. Plain data: no database, no files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


# slots: a bulk edit makes a few of these per label; no per-instance dict to make, read and free
@dataclass(slots=True)
class LabelPatch:
    """One label in one field: ``before``/``after`` are whole documents (``None`` = absent),
    or, when ``whole`` is false, only the top-level keys that change."""

    field: str
    label_id: str
    before: dict | None
    after: dict | None
    index: int = -1  # where an inserted label goes (-1: at the end)
    whole: bool = True

    def inverse(self) -> LabelPatch:
        return LabelPatch(self.field, self.label_id, self.after, self.before, self.index, self.whole)


@dataclass(frozen=True, slots=True)
class Version:
    """A sample's version: ``rev`` counts maskreview's edits of it (a counter that every edit
    increments, conditional on the value it read, so two writers can never both write on top of
    the same revision), ``by`` names the session that wrote that revision (a revision read back
    is then known to be this session's own, not another's with the same number), and
    ``modified`` is ``last_modified_at``, which every writer sets, FiftyOne's ``save()`` too."""

    rev: int = 0
    by: str | None = None
    modified: datetime | None = None

    def same_state(self, other: Version) -> bool:
        """What a conditional write checks: no edit and no other write since ``other``."""
        return self.rev == other.rev and self.modified == other.modified


@dataclass(slots=True)
class SamplePatch:
    sample_id: str
    labels: list[LabelPatch] = field(default_factory=list)
    tags_add: list[str] = field(default_factory=list)
    tags_remove: list[str] = field(default_factory=list)
    # Filled in when written: the version the write is conditional on (None: unconditional,
    # only in journals written before revisions) and the version it gives the sample.
    expect: Version | None = None
    result: Version | None = None

    def inverse(self) -> SamplePatch:
        return SamplePatch(self.sample_id, [p.inverse() for p in reversed(self.labels)],
                           list(self.tags_remove), list(self.tags_add))

    @property
    def empty(self) -> bool:
        return not (self.labels or self.tags_add or self.tags_remove)


@dataclass(slots=True)
class Change:
    """What one op did; ``inverse()`` undoes it."""

    text: str
    patches: list[SamplePatch] = field(default_factory=list)

    def inverse(self) -> Change:
        return Change(f"undo {self.text}", [p.inverse() for p in reversed(self.patches)])

    @property
    def sample_ids(self) -> list[str]:
        return list(dict.fromkeys(p.sample_id for p in self.patches))

    @property
    def label_ids(self) -> list[str]:
        return list(dict.fromkeys(lp.label_id for p in self.patches for lp in p.labels))

    @property
    def empty(self) -> bool:
        return all(p.empty for p in self.patches)
