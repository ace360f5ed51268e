"""Shards of a dataset for independent inference workers: ``--shard I/N``.

A sample belongs to shard ``sha1(sample id) mod N``: the same for every process, machine and
view of the dataset (an id never changes; its position in a view does), so N workers started
anywhere, in any order, cover every sample exactly once. A shard of a view is the view's samples
in that shard: workers over the same view together cover exactly the view.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from maskreview.core.errors import BadInputError


@dataclass(frozen=True)
class Shard:
    index: int  # from 0
    count: int

    def __post_init__(self):
        if not (self.count >= 1 and 0 <= self.index < self.count):
            raise BadInputError(f"shard {self.index}/{self.count}: I/N needs N at least 1 and I in 0..N-1")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, sample_id: str) -> bool:
        return shard_of(sample_id, self.count) == self.index

    def key(self) -> str:
        """A name for this shard inside a record (no dots or slashes: a MongoDB field name)."""
        return f"{self.index}of{self.count}"


def shard_of(sample_id: str, count: int) -> int:
    """The shard (0..count-1) that ``sample_id`` belongs to."""
    return int.from_bytes(hashlib.sha1(str(sample_id).encode()).digest()[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """``I/N`` (``0/4`` .. ``3/4``)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise BadInputError(f"{text!r}: expected I/N, e.g. 0/4 for the first of four shards")
    return Shard(int(match[1]), int(match[2]))


def select(ids: list[str], shard: Shard | None) -> list[bool]:
    """For each id: whether it is in ``shard`` (all True without a shard)."""
    if shard is None or shard.count == 1:
        return [True] * len(ids)
    return [shard.holds(i) for i in ids]


def within(shard: Shard | None, index: int, count: int) -> Shard | None:
    """Shard ``index`` of ``count`` of ``shard`` (a distributed run's ranks over one ``--shard``).

    ``h mod (N * W)`` is ``I + N * r`` exactly when ``h mod N`` is ``I``, so the W sub-shards
    ``I + N * r`` of ``N * W`` cover exactly shard I/N, each sample once."""
    if count == 1:
        return shard
    base = shard or Shard(0, 1)
    return Shard(base.index + base.count * index, base.count * count)
