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


def patched_sample(data: SampleData | None, patches: list) -> SampleData | None:
    """``data`` with ``patches`` applied (the ``SamplePatch`` objects an edit just wrote to its
    sample, in order, versions filled in): what reading the sample again would give, without
    reading it (a dense scene's 3,000 labels are not decoded again after one edit). Labels the
    patches do not touch stay the same ``Instance`` objects and untouched fields the same lists,
    so the canvas repaints only what differs.

    None (read it again) when that could be wrong: the patches do not start from the version on
    show (someone else wrote in between: "keep mine" goes on top of theirs), evaluation colours are
    on show (they follow the labels read again), or a patch names a label that is not shown."""
    if data is None or data.sample_id is None or data.version is None or not patches:
        return None
    if any(i.eval is not None for insts in data.fields.values() for i in insts):
        return None
    fields, tags, version = dict(data.fields), list(data.tags), data.version
    copied: set[str] = set()
    for p in patches:
        if p.sample_id != data.sample_id or p.expect is None or p.result is None or p.expect != version:
            return None
        version = p.result
        for lp in p.labels:
            if lp.field not in fields:  # not shown (a <field>_original snapshot)
                continue
            if lp.field not in copied:
                fields[lp.field] = list(fields[lp.field])
                copied.add(lp.field)
            if not _apply_label_patch(fields[lp.field], lp, data.height, data.width):
                return None
        if p.tags_add or p.tags_remove:  # as the write's update expression (writer.update_expression)
            tags = [t for t in tags if t not in p.tags_remove] + [t for t in p.tags_add if t not in tags]
    out = SampleData(data.sample_id, data.filepath, data.image, data.error, data.height, data.width, fields, tags,
                     data.scratch_detections, version)
    return out


def _instance(field_name: str, doc: dict, height: int, width: int) -> Instance:
    """A label document as the canvas reads it (``load_sample``: the same decoding)."""
    from maskreview.gui.queries import RawDetection, RawDetections

    return instances_from_detections(field_name, RawDetections([RawDetection(doc)]), height, width)[0]


def _apply_label_patch(insts: list[Instance], lp, height: int, width: int) -> bool:
    """Apply one ``LabelPatch`` to a field's instances in place, as the database write does
    (``writer._label_expression``); False when it cannot be done exactly here."""
    from dataclasses import replace

    if lp.whole:  # the label removed by id, then its new document (if any) put at ``index``
        insts[:] = [i for i in insts if i.id != lp.label_id]
        if lp.after is not None:
            inst = _instance(lp.field, lp.after, height, width)
            if inst.id != lp.label_id:
                return False
            insts.append(inst) if lp.index < 0 else insts.insert(lp.index, inst)
        return True
    at = next((k for k, i in enumerate(insts) if i.id == lp.label_id), None)
    if at is None or lp.after is None:
        return False
    after, old = lp.after, insts[at]
    if ("mask" in after) != ("bounding_box" in after):  # the box is read from both: reread
        return False
    changes = {}
    if "label" in after:
        changes["label"] = str(after["label"])
    if "confidence" in after:
        changes["score"] = after["confidence"]
    if "tags" in after:
        changes["tags"] = tuple(after["tags"] or ())
    if "mask" in after:
        new = _instance(lp.field, {"_id": old.id, "bounding_box": after["bounding_box"], "mask": after["mask"]},
                        height, width)
        changes.update(x0=new.x0, y0=new.y0, w=new.w, h=new.h, mask=new.mask)
    insts[at] = replace(old, **changes, _area=None, _edges=None)
    return True
