"""The mask codec's decoder reads back what ``np.load`` reads, for every ``.npy`` header: its fast
path (a bool C-order mask, the header FiftyOne and ``encode_mask`` write) and the general one."""

import io
import zlib

import numpy as np
import pytest

from maskreview.core.store import codec


def _npy(array: np.ndarray) -> bytes:
    with io.BytesIO() as f:
        np.save(f, array)
        return zlib.compress(f.getvalue())


ARRAYS = [
    np.eye(5, 7, dtype=bool),
    np.zeros((0, 5), bool),
    np.ones(3, bool),
    np.array(True),
    np.asfortranarray(np.eye(4, 3, dtype=bool)),
    np.arange(12, dtype=np.uint8).reshape(3, 4),
    np.arange(6, dtype=">i4").reshape(2, 3),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}{'F' if np.isfortran(a) else ''}")
def test_decode_mask_reads_what_np_load_reads(array):
    raws = [_npy(array)] + ([codec.encode_mask(array)] if array.dtype == bool else [])
    from fiftyone.core.utils import serialize_numpy_array

    raws.append(serialize_numpy_array(array))
    for raw in raws:
        codec._HEADERS.clear()
        for _ in range(2):  # the header parsed, then cached
            got, want = codec.decode_mask(raw), np.load(io.BytesIO(zlib.decompress(raw)))
            assert got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want)
            assert not got.flags.writeable
            mine = codec.decode_mask(raw, writable=True)
            assert mine.flags.writeable and np.array_equal(mine, want)


def test_decode_mask_refuses_bytes_that_do_not_fit_the_header():
    good = zlib.decompress(codec.encode_mask(np.eye(4, dtype=bool)))
    for data in (good + b"\x01", good[:-1]):
        with pytest.raises(ValueError):
            codec.decode_mask(zlib.compress(data))
