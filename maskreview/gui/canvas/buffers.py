"""Big pixel buffers handed out again instead of going back to the system.

A dense scene's layers are 64 MB each (4096 x 4096 BGRA). glibc gives anything past 32 MB its
own ``mmap`` and unmaps it when freed, so every new layer's first touch faults in fresh pages;
on the benches' VM (virtio free page reporting) that is 170-340 ms of kernel CPU for the two
layers of an open where the pages come straight from a layer just freed take ~12 ms
(BENCHMARKS.md, #17 dense open, eighth session). :func:`zeros` hands out an array no one else
holds any more (its reference count says so), cleared, and keeps up to :data:`SPARE_BYTES` of
such arrays for the next caller.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

MIN_BYTES = 8 << 20  # smaller ones: np.zeros / np.empty
SPARE_BYTES = 256 << 20  # arrays no one holds, kept for reuse: four 4096 x 4096 layers

_ARRAYS: list[np.ndarray] = []  # every array handed out (in use or not), oldest first
_LOCK = threading.Lock()
_FREE_REFS = 2  # sys.getrefcount(_ARRAYS[k]): the list's and the argument's; a view, a QImage's _keep... add theirs


def zeros(shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
    """``np.zeros(shape, dtype)``; past :data:`MIN_BYTES`, an array of that shape no one holds
    any more, cleared, when there is one."""
    return _take(tuple(shape), np.dtype(dtype), True)


def empty(shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
    """As :func:`zeros`, the values left as they are (the caller writes every one)."""
    return _take(tuple(shape), np.dtype(dtype), False)


def _take(shape: tuple[int, ...], dtype: np.dtype, clear: bool) -> np.ndarray:
    if int(np.prod(shape)) * dtype.itemsize < MIN_BYTES:
        return np.zeros(shape, dtype) if clear else np.empty(shape, dtype)
    with _LOCK:
        free = [k for k in range(len(_ARRAYS)) if sys.getrefcount(_ARRAYS[k]) <= _FREE_REFS]
        out = next((_ARRAYS[k] for k in free if _ARRAYS[k].shape == shape and _ARRAYS[k].dtype == dtype), None)
        spare = 0
        for k in reversed(free):  # the newest kept first, within the budget
            a = _ARRAYS[k]
            if a is out:
                continue
            if spare + a.nbytes > SPARE_BYTES:
                del _ARRAYS[k]
            else:
                spare += a.nbytes
        if out is None:
            out = np.zeros(shape, dtype)
            _ARRAYS.append(out)
            return out
    if clear:
        out.fill(0)  # held here now: no one else takes it
    return out


def spare_bytes() -> int:
    """The bytes of arrays kept that no one holds."""
    with _LOCK:
        return sum(_ARRAYS[k].nbytes for k in range(len(_ARRAYS)) if sys.getrefcount(_ARRAYS[k]) <= _FREE_REFS)
