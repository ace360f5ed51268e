"""Pickles that hold plain data only, read without running code from them.

Two things maskreview reads back are pickles: the model worker's replies (its wire format,
``core.model.worker_io``) and evaluations kept in the user's cache dir (``core.review.stored``).
Neither should be able to do more than build data if someone else wrote it: the reader admits
builtin containers and scalars, ``collections``', ``datetime``'s and bson's types, numpy arrays
(not memory maps), scalars and dtypes, and maskreview's own Qt-free dataclasses, enums and named
tuples (their constructors only assign). No function is admitted except numpy's array and scalar
rebuilders, so a pickle cannot call ``open``, ``os.system``, ``numpy.save``, ``numpy.memmap`` or
one of maskreview's functions or resource-holding classes.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import pickle

import numpy as np

_BUILTIN_TYPES = {"dict", "list", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int", "float",
                  "complex", "bool", "slice", "range", "object", "NoneType"}
_REBUILDERS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                     ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                     ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                     ("_codecs", "encode")}  # protocol 2's bytes
_TYPE_MODULES = ("collections", "datetime", "bson")


def _plain_class(found) -> bool:
    return isinstance(found, type) and (dataclasses.is_dataclass(found) or issubclass(found, (enum.Enum, tuple)))


def _numpy_class(found) -> bool:
    return found is np.ndarray or found is np.dtype or (isinstance(found, type) and (
        issubclass(found, (np.generic, np.dtype))))


class PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module in ("builtins", "__builtin__"):  # protocol 2 spells it the Python 2 way
            ok = name in _BUILTIN_TYPES
        elif (module, name) in _REBUILDERS:
            ok = True
        elif module == "numpy" or module.startswith("numpy."):
            ok = _numpy_class(super().find_class(module, name))
        elif module == "maskreview.core" or module.startswith("maskreview.core."):
            ok = _plain_class(super().find_class(module, name))
        else:
            ok = any(module == m or module.startswith(m + ".") for m in _TYPE_MODULES) and isinstance(
                super().find_class(module, name), type)
        if not ok:
            raise pickle.UnpicklingError(f"{module}.{name} is not plain data")
        return super().find_class(module, name)


def loads(data: bytes):
    return PlainUnpickler(io.BytesIO(data)).load()


def load(file):
    return PlainUnpickler(file).load()
