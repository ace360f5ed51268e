"""Ids as the database holds them: ObjectIds, made fast and parsed once (every package uses these)."""

from __future__ import annotations

import functools
import itertools
import os
import random
import time
from collections.abc import Iterable

from bson import ObjectId

_oid_counter = itertools.count(random.randrange(1 << 24))
_oid_process: tuple[int | None, bytes] = (None, b"")


def new_oid() -> ObjectId:
    """A fresh ObjectId laid out as ``ObjectId()`` makes them (seconds, 5 random bytes per
    process, a 3-byte counter), in a tenth of its time (BENCHMARKS.md, write-back; a bulk edit
    makes one per snapshot)."""
    global _oid_process
    pid = os.getpid()
    if _oid_process[0] != pid:  # a forked child must not repeat its parent's ids
        _oid_process = (pid, os.urandom(5))
    counter = next(_oid_counter) & 0xFFFFFF
    return ObjectId((int(time.time()) & 0xFFFFFFFF).to_bytes(4, "big") + _oid_process[1] + counter.to_bytes(3, "big"))


def new_id() -> str:
    return str(new_oid())


def as_oid(value) -> ObjectId:
    """A sample or label id as an ObjectId (an ObjectId is returned as it is)."""
    return value if isinstance(value, ObjectId) else _parse_oid(value)


def as_oids(values: Iterable) -> list[ObjectId]:
    return [as_oid(v) for v in values]


@functools.lru_cache(maxsize=1 << 16)
def _parse_oid(value: str) -> ObjectId:
    """ObjectIds are immutable; resolving and writing look the same ids up many times."""
    return ObjectId(value)
