"""A write-ahead journal of edits: append-only JSON lines, fsynced before an edit is acknowledged.

Each session appends to its own file ``<data dir>/journal/<dataset id>/<time>-<pid>.jsonl``
and holds an exclusive ``flock`` on it while it lives, so the kernel releases the lock when the
process dies, even by ``kill -9``. Opening a dataset replays the files nobody holds.

Lines are ``{"seq": n, "bson": "..."}`` (a change, written before it goes to the database: its
patches as base64 BSON, or ``{"seq": n, "patches": [...]}`` in JSON for values BSON cannot hold),
``{"applied": [n, ...]}`` and ``{"rejected": [n, ...]}``, each ending in ``"crc": "<hex>"``, the
CRC-32 of the line's text before it (lines from journals older than checksums have none).

Damage: a line that is not ASCII JSON, fails its checksum or does not decode is reported with
its position (:class:`DamagedLine`), skipped, and kept as found in ``<journal>.quarantined``
beside the journal, before the journal is deleted; every other entry is replayed.

Compaction: once the file passes ``compact_bytes`` (and on a clean close), the entries the
database has confirmed are dropped. With none pending the file is truncated in place; otherwise
the pending entries are written to a locked temporary file, fsynced and renamed over the journal
(atomic), so at every moment the path holds every entry not yet confirmed. Patches in JSON have ObjectIds
as ``{"$oid"}``, datetimes as ``{"$date"}``, mask bytes as base64 (``{"$b64"}``; ``{"$rle"}`` is read too).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import bson
import numpy as np
from bson import Binary, ObjectId
from bson.errors import BSONError, InvalidDocument

from maskreview.core.editing.changes import LabelPatch, SamplePatch, Version
from maskreview.core.masks import decode_rle
from maskreview.core.store import user_data_dir
from maskreview.core.store.codec import encode_mask


def journal_root() -> Path:

    return user_data_dir() / "journal"


# --------------------------------------------------------------------------------------------
# JSON encoding of patches
# --------------------------------------------------------------------------------------------

def _encode(value):
    """JSON for what the C encoder does not know (``json.dumps(..., default=_encode)``)."""
    if isinstance(value, ObjectId):
        return {"$oid": str(value)}
    if isinstance(value, datetime):
        return {"$date": value.isoformat()}
    if isinstance(value, (bytes, Binary)):
        # Masks are FiftyOne's zlib-compressed arrays already: base64 keeps them exact and costs
        # microseconds, where decoding them to RLE costs about a millisecond per mask.
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot journal a {type(value).__name__}")


# One encoder for every line: json.dumps with arguments builds a new one per call.
_LINE_ENCODER = json.JSONEncoder(default=_encode, check_circular=False)


def _decode(value, key: str | None = None):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag == "$oid":
            return ObjectId(inner)
        if tag == "$date":
            return datetime.fromisoformat(inner)
        if tag == "$b64":
            return base64.b64decode(inner)
        if tag == "$rle":
            array = decode_rle({"size": inner["size"], "counts": inner["counts"].encode()})
            return encode_mask(array)
    return {k: _decode(v, k) for k, v in value.items()}


def encode_patch(p: SamplePatch) -> dict:
    """The patch as JSON-ready data, except values :func:`_encode` turns into JSON."""
    return {
        "sample_id": p.sample_id, "tags_add": p.tags_add, "tags_remove": p.tags_remove,
        "expect": _version_data(p.expect), "result": _version_data(p.result),
        # "before" is for undo, which lives in memory; replaying needs only the state after.
        "labels": [{"field": lp.field, "label_id": lp.label_id, "after": lp.after,
                    "index": lp.index, "whole": lp.whole} for lp in p.labels],
    }


def entry_line(seq: int, patches: list[SamplePatch]) -> str:
    """One change as a journal line. BSON (the database's own encoding: ObjectIds, dates and mask
    bytes as they are) costs a third of JSON to write (BENCHMARKS.md, write-back); JSON stays
    for values BSON cannot hold."""
    return _entry_bytes(seq, patches).decode()


def _entry_bytes(seq: int, patches: list[SamplePatch]) -> bytes:
    """:func:`entry_line` as the bytes written (ASCII), made as bytes: a bulk edit writes 1,000s."""
    encoded = [encode_patch(p) for p in patches]
    try:
        data = bson.encode({"patches": encoded})
    except (InvalidDocument, OverflowError):
        return _sealed(_LINE_ENCODER.encode({"seq": seq, "patches": encoded})[:-1].encode())
    return _sealed(b'{"seq": %d, "bson": "%s"' % (seq, base64.b64encode(data)))


def _sealed(body: bytes) -> bytes:
    """A journal line: ``body`` (a JSON object's text without its closing brace) closed with the
    checksum of that text."""
    return b'%s, "crc": "%08x"}' % (body, zlib.crc32(body))


def entry_patches(record: dict) -> list[SamplePatch]:
    """The patches of a journal line written by :func:`entry_line`."""
    if "bson" in record:
        return [_patch(d) for d in bson.decode(base64.b64decode(record["bson"], validate=True))["patches"]]
    return [decode_patch(d) for d in record["patches"]]


def decode_patch(d: dict) -> SamplePatch:
    return _patch(_decode(d))


def _patch(d: dict) -> SamplePatch:
    result = _version(d["result"]) if "result" in d else _version(d["stamp"])
    return SamplePatch(d["sample_id"], [LabelPatch(before=None, **lp) for lp in d["labels"]], d["tags_add"], d["tags_remove"],
                       _version(d["expect"]), result)


def _version_data(v: Version | None) -> dict | None:
    return None if v is None else {"rev": v.rev, "by": v.by, "modified": v.modified}


def _version(data: dict | datetime | None) -> Version | None:
    if isinstance(data, datetime):  # a journal from before revisions: last_modified_at alone
        return Version(modified=data)
    return None if data is None else Version(data["rev"], data["by"], data["modified"])


# --------------------------------------------------------------------------------------------
# journal files
# --------------------------------------------------------------------------------------------

COMPACT_BYTES = 1 << 20  # compact the journal once it is past this size


class Journal:
    """This session's journal file for one dataset."""

    def __init__(self, dataset_id: str, root: Path | None = None, compact_bytes: int = COMPACT_BYTES):
        self.dir = Path(root or journal_root()) / dataset_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"{time.time_ns()}-{os.getpid()}.jsonl"
        self._fd = _open_locked(self.path)
        _fsync_dir(self.dir)
        self.seq = 0
        self.compact_bytes = compact_bytes
        self.pending: dict[int, bytes] = {}  # seq -> its journal line, until the database confirms it

    def append(self, changes: list[list[SamplePatch]]) -> list[int]:
        """Write changes and fsync; only then may they be written to the database."""
        lines = {}
        for patches in changes:
            self.seq += 1
            lines[self.seq] = _entry_bytes(self.seq, patches)
        _write_all(self._fd, b"\n".join(lines.values()) + b"\n")
        os.fsync(self._fd)
        self.pending.update(lines)
        return list(lines)

    def mark(self, seqs: list[int], what: str = "applied") -> None:
        # No fsync: a lost marker only means an idempotent replay of an applied change.
        if seqs:
            _write_all(self._fd, _sealed(json.dumps({what: list(seqs)})[:-1].encode()) + b"\n")
            for seq in seqs:
                self.pending.pop(seq, None)
            if os.fstat(self._fd).st_size > self.compact_bytes:
                self._try_compact()

    def compact(self) -> None:
        """Drop the entries the database confirmed; keep every pending one."""
        if not self.pending:
            os.ftruncate(self._fd, 0)  # one syscall: the file is either all confirmed entries or empty
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = _open_locked(tmp, os.O_TRUNC)
        try:
            _write_all(fd, b"\n".join(self.pending.values()) + b"\n")
            os.fsync(fd)
            os.replace(tmp, self.path)  # the locked new file takes the name; never a moment without it
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.dir)
        os.close(self._fd)
        self._fd = fd

    def _try_compact(self) -> None:
        # Only an optimization: when it fails (disk full...) the journal stays whole, as it was.
        try:
            self.compact()
        except OSError:
            pass

    def size(self) -> int:
        return os.fstat(self._fd).st_size if self._fd is not None else 0

    def close(self) -> None:
        if self._fd is None:
            return
        if not self.pending:  # everything reached the database: nothing to replay
            self.path.unlink(missing_ok=True)
        else:
            self._try_compact()
        os.close(self._fd)
        self._fd = None


def _open_locked(path: Path, flags: int = 0) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class DamagedLine:
    """A journal line that cannot be trusted: where it is, what is wrong, its bytes as found."""

    path: Path
    line: int  # from 1
    offset: int  # of its first byte
    reason: str
    data: bytes

    def __str__(self) -> str:
        return f"{self.path.name} line {self.line} (byte {self.offset}): {self.reason}"


@dataclass
class OrphanJournal:
    """A journal file left by a session that ended without closing it (crash, kill)."""

    path: Path
    fd: int
    entries: list[tuple[int, list[SamplePatch]]] = field(default_factory=list)  # not applied
    damaged: list[DamagedLine] = field(default_factory=list)

    @property
    def quarantine_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".quarantined")  # not *.jsonl: never replayed

    def release(self, delete: bool) -> None:
        """Unlock; ``delete``: the journal is replayed, only its damaged lines are kept."""
        if delete:
            self._quarantine()
            self.path.unlink(missing_ok=True)
        os.close(self.fd)

    def _quarantine(self) -> None:
        """Append the damaged lines to :attr:`quarantine_path` (a JSON line each: position,
        reason and the bytes in base64), on disk before the journal goes."""
        if not self.damaged:
            return
        lines = "".join(json.dumps({"journal": d.path.name, "line": d.line, "offset": d.offset, "reason": d.reason,
                                    "bytes": base64.b64encode(d.data).decode()}) + "\n" for d in self.damaged)
        fd = os.open(self.quarantine_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            _write_all(fd, lines.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.path.parent)


def orphans(dataset_id: str, root: Path | None = None) -> Iterator[OrphanJournal]:
    """Journal files of dead sessions, each locked while the caller replays it."""
    folder = Path(root or journal_root()) / dataset_id
    if not folder.is_dir():
        return
    for tmp in folder.glob("*.jsonl.tmp"):  # a compaction that died before its rename
        fd = _lock_if_free(tmp)
        if fd is not None:
            tmp.unlink(missing_ok=True)
            os.close(fd)
    for path in sorted(folder.glob("*.jsonl")):
        fd = _lock_if_free(path)
        if fd is not None:
            yield OrphanJournal(path, fd, *_pending_entries(path))


def _lock_if_free(path: Path) -> int | None:
    """A locked descriptor of ``path``, or None when a live session holds it (or it is gone).
    The lock must be on the file that has the name now: a compaction may have renamed another
    file over it between the open and the lock."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino == os.stat(path).st_ino:
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    os.close(fd)
    return None


def _pending_entries(path: Path) -> tuple[list[tuple[int, list[SamplePatch]]], list[DamagedLine]]:
    """The entries not marked applied or rejected, and the lines that cannot be read."""
    entries: dict[int, list[SamplePatch]] = {}
    done: set[int] = set()
    damaged = []
    data = path.read_bytes()
    end = 0
    for number, line in enumerate(data.split(b"\n"), 1):
        start, end = end, end + len(line) + 1
        if not line:
            continue
        try:
            record = _record(line)
            if "seq" in record:
                entries[record["seq"]] = _entry_patches(record)
            done.update(record.get("applied", ()), record.get("rejected", ()))
        except _Damaged as exc:
            cut_short = end > len(data)  # no newline after it: its session died writing it, unacknowledged
            damaged.append(DamagedLine(path, number, start, "cut short at the end" if cut_short else str(exc), line))
    return [(seq, patches) for seq, patches in sorted(entries.items()) if seq not in done], damaged


class _Damaged(Exception):
    pass


def _record(line: bytes) -> dict:
    """The record one line holds, checked; raises :class:`_Damaged` saying what is wrong."""
    try:
        record = json.loads(line.decode("ascii"))  # lines are ASCII: JSON escapes the rest
    except ValueError:
        raise _Damaged("not a line of JSON") from None
    if not isinstance(record, dict) or not record.keys() & {"seq", "applied", "rejected"}:
        raise _Damaged("not a journal record")
    crc = record.pop("crc", None)  # lines written before checksums have none
    if crc is not None and crc != "%08x" % zlib.crc32(line[: line.rfind(b', "crc": ')]):
        raise _Damaged("checksum mismatch")
    marked = record.get("applied", record.get("rejected", []))
    if not (isinstance(record.get("seq", 0), int) and isinstance(marked, list) and all(isinstance(n, int) for n in marked)):
        raise _Damaged("not a journal record")
    return record


def _entry_patches(record: dict) -> list[SamplePatch]:
    try:
        return entry_patches(record)
    except binascii.Error:
        raise _Damaged("bad base64") from None
    except BSONError:
        raise _Damaged("bad BSON") from None
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _Damaged("not a journal entry") from None
