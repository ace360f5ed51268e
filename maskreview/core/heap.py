"""Giving the memory a bulk job freed back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None (another C library: nothing to do)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def give_back() -> bool:
    """Return the free pages of malloc's heap to the system (``malloc_trim(0)``). glibc gives
    back only the free end of its heap by itself: after an evaluation of 100,000 samples the
    heap held ~0.5 GB free behind a few live blocks, counted in the process's RSS until the next
    run reused it (BENCHMARKS.md, "evaluate all 100k"). Whether any page went back."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
