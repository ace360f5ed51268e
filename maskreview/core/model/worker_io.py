"""The model worker's wire format: length-prefixed pickles over a pipe, read back without torch.

Each message is a header (length, request id: two little-endian 8-byte integers) followed by a
pickle (protocol 5: numpy arrays travel as one buffer copy); mappings and sequences of other
libraries (mongoengine's ``BaseDict``, say) are written as plain dicts and lists. The window
reads replies as plain data only (:mod:`maskreview.core.plain_pickle`), so a torch or
detectron2 object sent by mistake raises instead of importing torch into the window's process.
"""

from __future__ import annotations

import io
import os
import pickle
import struct

from maskreview.core import plain_pickle

_HEADER = struct.Struct("<QQ")
_ALLOWED_MODULES = ("builtins", "collections", "datetime", "numpy", "bson", "maskreview.core")  # what it writes as is


class _PlainPickler(pickle.Pickler):
    def reducer_override(self, obj):
        kind = type(obj)
        if kind is dict or kind is list or kind.__module__.startswith(_ALLOWED_MODULES):
            return NotImplemented
        if isinstance(obj, dict):
            return dict, (dict(obj),)
        if isinstance(obj, list):
            return list, (list(obj),)
        return NotImplemented


def encode(message: dict) -> bytes:
    buffer = io.BytesIO()
    _PlainPickler(buffer, protocol=5).dump(message)
    data = buffer.getvalue()
    return _HEADER.pack(len(data), int(message.get("id") or 0)) + data


def decode(data: bytes, safe: bool = True):
    return plain_pickle.loads(data) if safe else pickle.Unpickler(io.BytesIO(data)).load()


def write_message(fd: int, message) -> None:
    view = memoryview(encode(message))
    while view:
        view = view[os.write(fd, view):]


def read_message(fd: int, safe: bool = True) -> dict:
    """The next message on ``fd``; ``EOFError`` when the other end closed it. ``safe``: refuse
    classes outside plain data (the window reading the worker; the worker trusts its window).
    A message that cannot be read becomes an ``error`` event of its request."""
    length, request_id = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    data = _read_exactly(fd, length)
    try:
        return decode(data, safe)
    except Exception as exc:  # noqa: BLE001 - the request fails, the pipe stays in step
        return {"id": request_id, "event": "error", "kind": "error", "message": f"unreadable reply: {exc}"}


def _read_exactly(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the pipe was closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
