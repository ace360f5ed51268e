"""The mask codec: the bytes FiftyOne stores for an instance mask, both ways.

FiftyOne stores a ``Detection.mask`` as ``fiftyone.core.utils.serialize_numpy_array`` writes it:
a zlib-compressed ``.npy`` file. Every mask maskreview reads from or writes to the database goes
through this module (the GUI's reader, evaluation, the edit resolver and journal, model runs);
nothing else decodes or encodes mask bytes. Pure numpy and zlib-ng (FiftyOne only reads a ``mask_path`` image).

zlib-ng, not the standard library's zlib: the same streams both ways (level 1 with the run-length
strategy even compresses to the same bytes), inflated ~3x faster (9,000 demo masks: 25 against
82 ms; evaluation inflates every mask of the view).
"""

from __future__ import annotations

import functools
import io
import math
import re

import numpy as np
from zlib_ng import zlib_ng as zlib

from maskreview.core.store import fiftyone

_NPY_HEADER = re.compile(rb"'descr':\s*'([^']+)',\s*'fortran_order':\s*(True|False),\s*'shape':\s*\(([^)]*)\)")
_HEADERS: dict[bytes, tuple | None] = {}  # .npy header -> (dtype, shape, order); masks repeat shapes


def encode_mask(mask: np.ndarray) -> bytes:
    """A box mask as FiftyOne stores it, with the ``.npy`` header made once per shape. zlib level
    1 with the run-length strategy, not FiftyOne's level 6: masks are runs of 0 and 1 bytes, so
    this is as small or smaller for a quarter to a sixth of the CPU (BENCHMARKS.md); any zlib
    stream reads back the same."""
    mask = np.asarray(mask, dtype=bool)
    packer = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS, 8, zlib.Z_RLE)
    return packer.compress(_npy_header(mask.shape) + mask.tobytes()) + packer.flush()  # tobytes: C order, any layout


@functools.lru_cache(maxsize=4096)
def _npy_header(shape: tuple[int, ...]) -> bytes:
    with io.BytesIO() as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|b1", "fortran_order": False, "shape": shape})
        return f.getvalue()


_OWN_HEAD = b"{'descr': '|b1', 'fortran_order': False, 'shape': ("  # what encode_mask (and FiftyOne) write


def _parse_header(head: bytes) -> tuple | None:
    if head.startswith(_OWN_HEAD):  # (a bool C-order mask: no regex; 3,361 shapes in 1,000 demo images)
        close = head.find(b")", len(_OWN_HEAD))
        if close > 0:
            try:
                shape = tuple(int(v) for v in head[len(_OWN_HEAD):close].split(b",") if v.strip())
            except ValueError:
                shape = None
            if shape is not None:
                return np.dtype(bool), shape, "C"
    m = _NPY_HEADER.search(head)
    if not m:
        return None
    shape = tuple(int(v) for v in m.group(3).split(b",") if v.strip())
    return np.dtype(m.group(1).decode()), shape, "F" if m.group(2) == b"True" else "C"


def decode_mask(raw, writable: bool = False) -> np.ndarray | None:
    """A mask from the bytes FiftyOne stores (None for None), without ``np.load``'s overhead.

    The array is a read-only view of the decompressed bytes unless ``writable`` (a copy)."""
    if raw is None:
        return None
    data = zlib.decompress(raw)
    if data[6:8] == b"\x01\x00":  # .npy format 1.0: the header is parsed once per distinct header
        end = 10 + data[8] + (data[9] << 8)
        head = data[10:end]
        parsed = _HEADERS.get(head, False)
        if parsed is False:
            parsed = _parse_header(head)
            if len(_HEADERS) < 100_000:
                _HEADERS[head] = parsed
        if parsed is not None:
            dtype, shape, order = parsed
            if order == "C" and len(data) - end == dtype.itemsize * math.prod(shape):
                # one constructor call, not frombuffer + reshape (~2 us a mask: 9,163 masks read per 1,000 images)
                array = np.ndarray(shape, dtype, data, end)
            else:
                array = np.frombuffer(data, dtype=dtype, offset=end).reshape(shape, order=order)
            return array.copy(order="K") if writable else array
    with io.BytesIO(data) as f:
        return np.load(f, allow_pickle=False)


def label_mask(doc: dict, writable: bool = False) -> np.ndarray | None:
    """The box mask of a raw label document: its ``mask`` bytes, else the image at its
    ``mask_path`` (read by FiftyOne, which knows that format); None when it has neither."""
    raw = doc.get("mask")
    if raw is not None:
        return decode_mask(raw, writable)
    path = doc.get("mask_path")
    if path:
        return fiftyone().Detection(mask_path=path).get_mask()
    return None
