"""What the canvas shows for one sample: the decoded image (or why it failed) and its instances."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from maskreview.gui.canvas.overlay import Instance, instances_from_detections


@dataclass(eq=False)
class SampleData:
    sample_id: str | None  # None for a scratch image that is not in the dataset
    filepath: str
    image: np.ndarray | None  # RGB uint8; None when it could not be decoded
    error: str | None
    height: int
    width: int
    fields: dict[str, list[Instance]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    scratch_detections: dict = field(default_factory=dict)  # field -> fo.Detections (scratch only)
    version: object = None  # the sample's version (writeback.version_of), read with its labels

    @property
    def scratch(self) -> bool:
        return self.sample_id is None


def placeholder_image(height: int = 256, width: int = 256) -> np.ndarray:
    """A grey checkerboard standing in for an image that failed to decode."""
    yy, xx = np.mgrid[0:height, 0:width]
    board = (((yy // 16) + (xx // 16)) % 2).astype(np.uint8)
    img = np.where(board[..., None] == 1, 96, 128).astype(np.uint8)
    return np.repeat(img, 3, axis=2) if img.shape[-1] == 1 else img


_LAST_DECODED: dict = {}  # the last image decoded: (path, mtime, size) -> array


def _decode(path: str) -> tuple[np.ndarray | None, str | None]:
    """The image at ``path``; the same file read again (a sample redrawn after an edit) is not
    decoded again: the array of the last decode is returned while the file's mtime and size hold."""
    from maskreview.core.errors import MaskreviewError
    from maskreview.core.images import read_image

    try:
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _LAST_DECODED:
        return _LAST_DECODED[key], None
    try:
        image = read_image(path)
        _LAST_DECODED.clear()
        if key is not None:
            _LAST_DECODED[key] = image
        return image, None
    except MaskreviewError as exc:
        return None, str(exc)
    except Exception as exc:  # a broken file must never take the window down
        return None, f"{path}: cannot decode image ({exc.__class__.__name__}: {exc})"


def build_sample_data(sample_id, filepath: str, label_fields: dict, metadata=None, tags=(),
                      eval_key: str | None = None, image: np.ndarray | None = None) -> SampleData:
    """Decode the image and turn each ``fo.Detections`` of ``label_fields`` into instances."""
    error = None
    if image is None:
        image, error = _decode(filepath)
    if image is not None:
        height, width = image.shape[:2]
    elif metadata is not None and getattr(metadata, "width", None) and getattr(metadata, "height", None):
        height, width = int(metadata.height), int(metadata.width)
    else:
        height, width = 256, 256
    fields = {name: instances_from_detections(name, dets, height, width, eval_key)
              for name, dets in label_fields.items()}
    return SampleData(sample_id, filepath, image, error, height, width, fields, list(tags or []))


def load_sample(dataset, sample_id: str, label_fields: list[str], eval_key: str | None = None) -> SampleData:
    """Read one sample's image, label fields and version from the dataset (one query)."""
    from maskreview.core.errors import BadInputError

    from maskreview.gui.queries import read_samples

    raw = read_samples(dataset, [sample_id], label_fields).get(sample_id)
    if raw is None:
        raise BadInputError(f"sample {sample_id} is not in dataset {dataset.name}")
    meta = type("Meta", (), {"width": raw.width, "height": raw.height})
    data = build_sample_data(sample_id, raw.filepath, raw.labels, meta, raw.tags, eval_key)
    data.version = raw.version
    return data
