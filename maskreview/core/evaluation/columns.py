"""COCO annotations or results as columns: one numpy array per key, one row per label.

What COCOeval's dicts hold (image id, category id, crowd flag or score, area, box), without a
dict, a list and a few floats a label: at 1,000,000 labels the dicts were ~0.4 GB, held through
a whole evaluation. :meth:`CocoColumns.dicts` makes the dicts of some rows when a chunk of them
is evaluated (``results.compute``); :func:`coco.coco_inputs`' other callers get the dicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CocoColumns:
    """Annotations (``iscrowd`` given; annotation id = ``first_row`` + row + 1) or results (``score`` given)."""

    image_id: np.ndarray  # int64, from 1
    category_id: np.ndarray  # int64
    iscrowd: np.ndarray | None = None  # bool: annotations
    score: np.ndarray | None = None  # float: results
    bbox: np.ndarray | None = None  # [n, 4] float [x, y, w, h], once known
    area: np.ndarray | None = None  # float, once known
    first_row: int = 0  # (rows: a span of a whole set's rows)

    def __len__(self) -> int:
        return len(self.image_id)

    @property
    def annotations(self) -> bool:
        return self.iscrowd is not None

    def measured(self) -> None:
        """Room for every row's ``area`` (and an annotation's ``bbox``), filled chunk by chunk."""
        n = len(self)
        self.area = np.zeros(n)
        if self.annotations:
            self.bbox = np.zeros((n, 4))

    def rows(self, span: slice) -> CocoColumns:
        """The rows of ``span`` (a slice with no step): views of these columns (a write to them
        writes here)."""
        start = range(len(self))[span].start if len(self) else 0
        view = lambda column: None if column is None else column[span]
        return CocoColumns(self.image_id[span], self.category_id[span], view(self.iscrowd), view(self.score),
                           view(self.bbox), view(self.area), self.first_row + start)

    def dicts(self, rows: np.ndarray | slice | None = None) -> list[dict]:
        """The COCO dicts of ``rows`` (all by default), with the keys and the Python values
        COCO's own dicts have: ``id`` (annotations), ``image_id``, ``category_id``, ``iscrowd``
        (an int) or ``score``, then ``bbox`` (a list) and ``area`` where known."""
        at = slice(None) if rows is None else rows
        names, values = [], []
        if self.annotations:
            names.append("id")
            values.append((np.arange(len(self))[at] + self.first_row + 1).tolist())
        names += ["image_id", "category_id"]
        values += [self.image_id[at].tolist(), self.category_id[at].tolist()]
        if self.annotations:
            names.append("iscrowd")
            values.append(self.iscrowd[at].astype(np.int64).tolist())
        else:
            names.append("score")
            values.append(self.score[at].tolist())
        for name in ("bbox", "area"):
            column = getattr(self, name)
            if column is not None:
                names.append(name)
                values.append(column[at].tolist())
        return [dict(zip(names, row)) for row in zip(*values)]

    @classmethod
    def of(cls, items: list[dict], annotations: bool) -> CocoColumns:
        """The columns of COCO annotation or result dicts: ids, categories, crowd flags or scores."""
        ids = np.array([x["image_id"] for x in items], np.int64).reshape(-1)
        cats = np.array([x["category_id"] for x in items], np.int64).reshape(-1)
        if annotations:
            return cls(ids, cats, iscrowd=np.array([bool(x.get("iscrowd", 0)) for x in items], bool).reshape(-1))
        return cls(ids, cats, score=np.array([x["score"] for x in items], float).reshape(-1))
