"""The write path for edits: journal first, then targeted database updates.

:class:`EditSession` resolves ops (:mod:`maskreview.core.editing.ops`) against the sample documents,
appends the resulting change to the write-ahead journal (fsynced), and writes it with update
pipelines that touch only the changed label fields and tags and set ``last_modified_at`` (one
update for several samples when their resolved values are known, see :func:`_resolved_updates`).
Many ops go in one journal write and one ``bulk_write``
(:meth:`EditSession.apply_many`), so bulk actions stay fast. Updates are acknowledged only once
mongod has them in its own journal (and a majority has them, on a replica set): only then does
the journal mark them applied, so a crash of mongod loses nothing the user was told was saved.

Shared databases: the session remembers each sample's :class:`~maskreview.core.editing.ops.Version`
as it was loaded (:meth:`EditSession.track`) and as it last wrote it: ``review_rev`` (a counter
each edit increments), ``review_rev_by`` (the session that wrote that revision) and
``last_modified_at`` (which other writers set). Every update is conditional on the revision and
``last_modified_at`` it expects and writes the next revision in the same update, so an edit to a
sample that someone else changed meanwhile raises :class:`ConflictError` instead of
overwriting, however close in time the two writes are; the caller then takes theirs
(:meth:`refresh`) or keeps mine (``force=True``: the edit goes on top of the version in the
database now). maskreview's other writers of labels (a model run, its undo, stored evaluation
results) increment the revision too (:func:`revised`), so an editor sees their writes as well.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

from maskreview.core.editing import journal as jn
from maskreview.core.editing.behind import InFlight, Landed, WriteBehind
from maskreview.core.editing.changes import Change, LabelPatch, SamplePatch, Version
from maskreview.core.editing.labels import apply_sample_patch, label_arrays
from maskreview.core.editing.ops import Op
from maskreview.core.editing.resolver import Resolver
from maskreview.core.errors import BadInputError, DatabaseError, MaskreviewError
from maskreview.core.fields import (EDIT_ATTRIBUTES, MODIFIED_FIELD, ORIGINAL_INDEX, ORIGINAL_OF, REV_BY_FIELD, REV_FIELD,
                                    RUNS_INFO_KEY, live_field, original_field)
from maskreview.core.gcpause import gc_paused
from maskreview.core.images import image_header
from maskreview.core.store import dataset_id, fiftyone, reader
from maskreview.core.store.ids import new_id
from maskreview.core.store import writer as sw
from maskreview.core.store.writer import (VERSION_FIELDS, bump_revisions, declare_revision_fields,  # noqa: F401 (callers' names)
                                          revised, unchanged_since)


_MS = timedelta(milliseconds=1)
RESOLVED_LABELS = 200  # a field holding more labels (a dense scene) is written by its patch (the labels it changes), not whole


class ConflictError(MaskreviewError):
    """Samples changed by someone else since this session loaded them; nothing was written."""

    def __init__(self, sample_ids: list[str], op: Op | Change | None = None):
        self.sample_ids = list(sample_ids)
        self.op = op
        super().__init__(f"{len(self.sample_ids)} sample(s) were changed by someone else since you loaded them "
                         f"({', '.join(self.sample_ids[:3])}); keep your edit or take theirs")


def version_of(doc: dict) -> Version:
    """The version of a sample document read with (at least) :data:`VERSION_FIELDS`."""
    return Version(doc.get(REV_FIELD) or 0, doc.get(REV_BY_FIELD), doc.get(MODIFIED_FIELD))


def _header_size(doc: dict) -> tuple[int, int]:
    """``(height, width)`` of a sample without an image size in its metadata, from its image's header."""
    try:
        width, height, _ = image_header(doc.get("filepath", ""))
    except BadInputError as exc:
        raise BadInputError(f"cannot edit masks of sample {doc.get('_id')}: no image size in its metadata "
                            f"and its image cannot be read ({exc})") from exc
    return height, width


class EditSession:
    """Applies edits to one dataset; replays what a crashed session left in its journal."""

    def __init__(self, dataset, journal_root: Path | None = None):
        self.dataset = dataset
        self._writer = sw.SampleWriter(dataset, durable=True)  # reads go through store.reader
        self._journal_root = journal_root
        self.versions: dict[str, Version] = {}
        self.writer = new_id()  # this session's name in the revisions it writes
        self._last_stamp = datetime.min
        self._checked_fields: set[str] = set()
        self._declared: set[tuple[str, str]] = set()
        self._shapes: set[tuple[str, tuple[str, ...]]] = set()  # (field, attributes) checked and declared
        # the documents last read or written, as they are after this session's changes: what
        # edits resolve against while the database is unreachable (see resume)
        self._cache: OrderedDict[str, tuple[frozenset, dict]] = OrderedDict()
        self.queued: list[tuple[list[int], list[Change]]] = []  # journaled, not yet in the database
        self._behind: WriteBehind | None = None  # see write_behind
        declare_revision_fields(dataset)
        self.replayed = self.replay()
        self.journal = jn.Journal(dataset_id(dataset), journal_root)

    # -- writing behind ------------------------------------------------------------------
    def write_behind(self, landed: Callable[[], None]) -> None:
        """From now on a dense sample's edit (one sample, a field of more than
        :data:`RESOLVED_LABELS` labels) returns once journaled: its database write goes on in a
        worker thread (:mod:`maskreview.core.editing.behind`), which calls ``landed`` when it has
        its answer; :meth:`settle` then finishes it. Every other use of the session finishes it
        first (waiting for it), so the session reads and writes as if it had been written at once."""
        if self._behind is None:
            self._behind = WriteBehind(landed)

    @property
    def writing(self) -> bool:
        """A write made behind is in flight (not yet finished by :meth:`settle`)."""
        return self._behind is not None and self._behind.in_flight is not None

    def settle(self, wait: bool = True) -> list[Landed]:
        """Finish the write in flight (``wait``: waiting for its answer; else only if it has
        one), and return what became of every write made behind since the last call, in order."""
        if self._behind is None:
            return []
        self._land(wait)
        return self._behind.drain()

    def _land(self, wait: bool = True) -> None:
        flight = self._behind.take(wait) if self._behind is not None else None
        if flight is None:
            return
        change = Change(flight.live[0].text, [p for c in flight.live for p in c.patches])
        try:
            with gc_paused():
                self._confirm(flight, flight.future.result())
            landed = Landed(change)
        except ConflictError as exc:
            landed = Landed(change, exc)
        except Exception as exc:
            if sw.unconfirmed(exc):  # in the journal: written by resume() when the database is back
                self._queue(flight.seqs, flight.live, flight.chain)
                landed = Landed(change, queued=True)
            else:
                for sid in flight.ids:
                    self._cache.pop(sid, None)
                landed = Landed(change, exc)
        self._behind.outcomes.append(landed)

    # -- versions ------------------------------------------------------------------------
    def track(self, sample_ids: str | Iterable[str], read: dict | None = None) -> None:
        """Remember the samples' versions as they are now (call when the UI loads them).
        ``read``: :meth:`read_versions` of some of them, made on another thread; taken for each
        sample whose version here is still the one held when that read began (nothing written
        by this session since) while no write is in flight, the others are read here."""
        ids = [sample_ids] if isinstance(sample_ids, str) else list(sample_ids)
        if read and not self.writing:
            taken = [sid for sid in ids if sid in read and self.versions.get(sid) is read[sid][0]]
            for sid in taken:
                self.versions[sid] = read[sid][1]
            ids = [sid for sid in ids if sid not in set(taken)]
            if not ids:
                return
        self._land()
        for sid, doc in reader.by_ids(self.dataset, ids, VERSION_FIELDS).items():
            self.versions[sid] = version_of(doc)

    def read_versions(self, sample_ids: list[str]) -> dict:
        """For :meth:`track` on another thread (a model run's, while the GUI thread goes on):
        sample id -> (the version held here when the read began, the stored version)."""
        held = {sid: self.versions.get(sid) for sid in sample_ids}
        return {sid: (held[sid], version_of(doc))
                for sid, doc in reader.by_ids(self.dataset, list(sample_ids), VERSION_FIELDS).items()}

    def loaded(self, sample_id: str, version: Version | None) -> None:
        """The UI now shows this sample as of ``version`` (:func:`version_of` the document read
        in the same query as what is shown): edits to it are based on that. No database access."""
        if version is not None:
            self.versions[sample_id] = version

    def refresh(self, sample_ids: str | Iterable[str]) -> None:
        """Take theirs: accept the database's state of these samples and reload them."""
        ids = [sample_ids] if isinstance(sample_ids, str) else list(sample_ids)
        self.track(ids)
        self._reload(ids)

    # -- applying ops --------------------------------------------------------------------
    def apply(self, op: Op, force: bool = False) -> Change:
        """Resolve, journal and write one op; returns what changed (its inverse undoes it)."""
        return self.apply_many([op], force=force)[0]

    def apply_many(self, ops: list[Op], force: bool = False) -> list[Change]:
        """Many ops in one journal write and one database round trip."""
        # A batch allocates a few dicts per label; with FiftyOne loaded, the full collections
        # they trigger walk the whole heap (BENCHMARKS.md, write-back: gc_paused).
        self._land()
        with gc_paused():
            return self._apply_many(ops, force)

    def _apply_many(self, ops: list[Op], force: bool) -> list[Change]:
        if self.queued:
            self.try_resume()
        try:
            return self._resolve_and_write(ops, force)
        except Exception as exc:
            if isinstance(exc, MaskreviewError) or not sw.unconfirmed(exc):
                raise
            raise DatabaseError(f"the database is unreachable, so this edit cannot be made now ({type(exc).__name__}); "
                                "edits to the samples already open go on and are written when it is back") from exc

    def _resolve_and_write(self, ops: list[Op], force: bool) -> list[Change]:
        sample_ids = list(dict.fromkeys(s for op in ops for s in op.samples()))
        fields = {f for op in ops for f in op.fields()}
        for f in fields:
            self._check_field(f)
        docs = None if force else self._known(sample_ids, fields)
        if docs is not None:  # written optimistically: conditional on the version those documents are at
            try:
                return self._resolve_and_write_docs(ops, docs, False, whole_ok=False)
            except ConflictError:  # someone else wrote it since: as if read first (theirs read, the conflict raised)
                return self._resolve_and_write(ops, force)
        docs = self._read(sample_ids, fields)
        read = {sid: version_of(doc) for sid, doc in docs.items()}  # once per sample: a bulk edit reads 1,000s
        if force:  # keep mine: on top of the version just read
            self.versions.update(read)
        else:
            stale = [s for s in sample_ids if s in read and s in self.versions and read[s] != self.versions[s]]
            if stale:
                raise ConflictError(stale, ops[0] if len(ops) == 1 else None)
        for sid, version in read.items():
            self.versions.setdefault(sid, version)
        return self._resolve_and_write_docs(ops, docs, force)

    def _resolve_and_write_docs(self, ops: list[Op], docs: dict[str, dict], force: bool,
                                whole_ok: bool = True) -> list[Change]:
        """Resolve ``ops`` against ``docs`` (updated as they go: the session's cached documents)
        and write them. A failure drops those documents from the cache, as the resolver may have
        changed them without a write (not while offline: edits queue on the cache there)."""
        try:
            return self._resolve_and_write_known(ops, docs, force, whole_ok)
        except BaseException:
            if not self.queued:
                for sid in docs:
                    self._cache.pop(sid, None)
            raise

    def _resolve_and_write_known(self, ops: list[Op], docs: dict[str, dict], force: bool,
                                 whole_ok: bool) -> list[Change]:
        fields = {f for op in ops for f in op.fields()}
        arrays = {sid: label_arrays(doc) for sid, doc in docs.items()}  # before the resolver patches them
        resolver = Resolver(docs, self.dataset.info.get(RUNS_INFO_KEY), _header_size)
        changes = [resolver.resolve(op) for op in ops]
        projected = fields | {original_field(f) for f in fields}
        whole = whole_ok and not force
        shapes = self._shapes
        for change in changes:  # one pass over the label patches: their shapes, and whether each can go whole
            for p in change.patches:
                doc = docs.get(p.sample_id) or {}
                for lp in p.labels:
                    shape = (lp.field, tuple(lp.after or ()))
                    if shape not in shapes:  # a bulk edit writes the same few shapes
                        self._check_field(lp.field)
                        self._declare(lp)
                        shapes.add(shape)
                    if whole and (lp.field not in projected
                                  or len((doc.get(lp.field) or {}).get("detections") or ()) > RESOLVED_LABELS):
                        whole = False
        self._write(changes, docs if whole else None, arrays, behind=_dense(changes, docs))
        return changes

    def write(self, change: Change, force: bool = False) -> Change:
        """Write a change as it is (undo: ``write(change.inverse())``; redo: ``write(change)``)."""
        self._land()
        change = Change(change.text, [SamplePatch(p.sample_id, list(p.labels), list(p.tags_add), list(p.tags_remove))
                                      for p in change.patches])
        if force:  # keep mine: on top of the versions in the database now
            self.track(change.sample_ids)
        # A cached document known to be the database's (at the version the write expects, with
        # every field it patches) is patched as the database is; any other is dropped (its
        # document after the write is not known here).
        fields = {lp.field for p in change.patches for lp in p.labels}
        kept = {sid: self._cache[sid][1] for sid in change.sample_ids
                if not force and self._current(sid) and fields <= self._cache[sid][0]}
        for sid in set(change.sample_ids) - kept.keys():
            self._cache.pop(sid, None)
        with gc_paused():
            try:
                self._write([change], arrays={sid: label_arrays(doc) for sid, doc in kept.items()},
                            behind=_dense([change], kept))
            except BaseException:
                for sid in kept:
                    self._cache.pop(sid, None)
                raise
        for p in change.patches:  # written (or queued behind the journal): the database's next state
            if p.sample_id in kept:
                apply_sample_patch(kept[p.sample_id], p)
        return change

    def prepare(self, fields: Iterable[str]) -> None:
        """Check label fields are editable and create their ``_original`` snapshot fields now
        (a schema change, slow once), instead of on the first edit."""
        for name in fields:
            self._check_field(name)
            # the attributes every snapshot carries: declared now, not inside the first edit
            self._declare(LabelPatch(original_field(name), "", None, {ORIGINAL_OF: "", ORIGINAL_INDEX: 0}))

    # -- internals -----------------------------------------------------------------------
    def _check_field(self, name: str) -> None:
        if name in self._checked_fields:
            return
        fo = fiftyone()
        schema = self.dataset.get_field_schema()
        if name not in schema:
            self.dataset.add_sample_field(name, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
        else:
            fld = schema[name]
            if getattr(fld, "document_type", None) is not fo.Detections:
                raise BadInputError(f"field {name!r} does not hold Detections; it cannot be edited as instances")
            if getattr(fld, "read_only", False):
                raise BadInputError(f"field {name!r} is read-only in dataset {self.dataset.name!r}")
        if live_field(name) == name:
            self._check_field(original_field(name))
        self._checked_fields.add(name)

    def _declare(self, lp: LabelPatch) -> None:
        """Declare in the dataset schema the label attributes ``lp`` writes that are not yet
        (provenance, snapshot links, attributes copied into ``_original`` snapshots), once per
        field and attribute: the FiftyOne App and ``get_field_schema`` then list them."""
        new = [k for k in (lp.after or {}) if not k.startswith("_") and (lp.field, k) not in self._declared]
        if not new:
            return
        fo = fiftyone()
        schema = self.dataset.get_field_schema(flat=True)
        live = live_field(lp.field)
        for k in new:
            path = f"{lp.field}.detections.{k}"
            copied = schema.get(f"{live}.detections.{k}")
            if path in schema:
                pass
            elif copied is not None:
                self.dataset.add_sample_field(path, type(copied), **_embedded_kwargs(copied))
            elif (ftype := EDIT_ATTRIBUTES.get(k) or _field_type(lp.after[k])) is not None:
                self.dataset.add_sample_field(path, getattr(fo, ftype))
            self._declared.add((lp.field, k))

    @staticmethod
    def _projection(fields: set[str]) -> dict:
        projection = {"tags": 1, "metadata.width": 1, "metadata.height": 1, "filepath": 1, **dict.fromkeys(VERSION_FIELDS, 1)}
        for f in fields:
            projection[f] = 1
            projection[original_field(f)] = 1
        return projection

    def _current(self, sample_id: str) -> bool:
        """The cached document is the database's as of the version this session holds for the
        sample (the one its next write is conditional on)."""
        entry = self._cache.get(sample_id)
        return entry is not None and sample_id in self.versions and version_of(entry[1]) == self.versions[sample_id]

    def _known(self, sample_ids: list[str], fields: set[str]) -> dict[str, dict] | None:
        """The documents to resolve an edit against without reading them: one sample, cached at
        the version its write will be conditional on (so a write by anyone else since, which
        changes ``review_rev`` or ``last_modified_at``, makes the write match nothing and the
        edit falls back to reading), with every field the edit reads, each a dense field (more
        than :data:`RESOLVED_LABELS` labels: read back, ~1 MB a sample, is what this saves;
        smaller fields are read and written whole as before). None: read them."""
        if self.queued or len(sample_ids) != 1 or not self._current(sample_ids[0]):
            return None
        sid = sample_ids[0]
        paths, doc = self._cache[sid]
        if not set(self._projection(fields)) <= paths:
            return None
        if any(len((doc.get(f) or {}).get("detections") or ()) <= RESOLVED_LABELS for f in fields):
            return None
        self._cache.move_to_end(sid)
        return {sid: doc}

    def _read(self, sample_ids: list[str], fields: set[str]) -> dict[str, dict]:
        projection = self._projection(fields)
        if not self.queued:
            try:
                docs = reader.by_ids(self.dataset, sample_ids, projection)
            except Exception as exc:
                if not sw.unconfirmed(exc):
                    raise
            else:
                self._remember(docs, projection)
                return docs
        return self._cached(sample_ids, projection)  # the database is behind this session's queue, or gone

    # -- the database unreachable: edits queue behind the journal -------------------------
    CACHED_SAMPLES = 256

    def _remember(self, docs: dict[str, dict], projection: dict) -> None:
        paths = frozenset(projection)
        for sid, doc in docs.items():
            kept = self._cache.get(sid)
            if kept is not None and version_of(kept[1]) == version_of(doc):
                # the same version: the fields kept (another field edited before) stay known
                kept[1].update(doc)
                docs[sid] = doc = kept[1]
                self._cache[sid] = (paths | kept[0], doc)
            else:
                self._cache[sid] = (paths, doc)  # the same objects the resolver updates
            self._cache.move_to_end(sid)
        while len(self._cache) > self.CACHED_SAMPLES:
            self._cache.popitem(last=False)

    def _cached(self, sample_ids: list[str], projection: dict) -> dict[str, dict]:
        missing = [s for s in sample_ids if s not in self._cache or not set(projection) <= self._cache[s][0]]
        if missing:
            raise DatabaseError(f"the database is unreachable and sample {missing[0]} was not open with these fields "
                                "before it went away; edits to the samples already open go on and are written when "
                                "it is back")
        return {s: self._cache[s][1] for s in sample_ids}

    def cached_document(self, sample_id: str) -> dict | None:
        """The sample's document as this session last read or wrote it (the fields edits read),
        what the app shows while the database is unreachable."""
        entry = self._cache.get(sample_id)
        return None if entry is None else entry[1]

    @property
    def offline(self) -> bool:
        """Edits are waiting in the journal for the database (:meth:`resume` writes them)."""
        return bool(self.queued)

    @property
    def queued_count(self) -> int:
        return sum(len(changes) for _, changes in self.queued)

    def _queue(self, seqs: list[int], live: list[Change], chain: dict[str, Version]) -> None:
        self.queued.append((seqs, live))
        self.versions.update(chain)  # the next edits chain on these, as on written ones
        self._stamp_cached(chain)

    def _stamp_cached(self, chain: dict[str, Version]) -> None:
        for sid, version in chain.items():
            entry = self._cache.get(sid)
            if entry is not None:
                entry[1].update(sw.version_values(version))

    def try_resume(self) -> dict | None:
        """:meth:`resume`, or None while the database is still unreachable."""
        self._land()
        try:
            return self.resume()
        except Exception as exc:
            if not sw.unconfirmed(exc):
                raise
            return None

    def resume(self) -> dict:
        """Write the edits queued while the database was unreachable, in order, each as replaying
        a journal would (one that landed before its answer was lost is not written twice; one
        whose sample someone else changed meanwhile is a conflict: their version stays and is
        taken). Returns ``{"applied", "already", "conflicts": [sample ids]}``; raises while the
        database is unreachable (the queue stays as it is)."""
        report = {"applied": 0, "already": 0, "conflicts": []}
        if not self.queued:
            return report
        patches = [p for _, changes in self.queued for c in changes for p in c.patches]
        self._reapply(patches, report)
        conflicted = {p.sample_id for p in report["conflicts"]}
        for seqs, changes in self.queued:
            for seq, change in zip(seqs, changes):
                self.journal.mark([seq], "rejected" if conflicted & set(change.sample_ids) else "applied")
        ids = list(dict.fromkeys(p.sample_id for p in patches))
        self.queued = []
        for sid in conflicted:
            self._cache.pop(sid, None)
        self.track(conflicted)  # theirs: what edits are based on from now
        self._reload(ids)
        report["conflicts"] = sorted(conflicted)
        return report

    def _stamp(self, now: datetime | None = None) -> datetime:
        stamp = max(now or sw.now_ms(), self._last_stamp + timedelta(milliseconds=1))
        self._last_stamp = stamp
        return stamp

    def _versioned(self, changes: list[Change]) -> dict[str, Version]:
        """Give each patch the version it expects and the one it writes, chained per sample;
        returns each sample's last."""
        untracked = {p.sample_id for c in changes for p in c.patches} - self.versions.keys()
        if untracked:
            self.track(untracked)
        chain: dict[str, Version] = {}
        # now, or 1 ms after the last stamp; then 1 ms apart (what _stamp gives each in turn)
        stamp, step, writer, versions = self._stamp() - _MS, _MS, self.writer, self.versions
        for change in changes:
            for p in change.patches:
                stamp += step
                p.expect = expect = chain.get(p.sample_id) or versions.get(p.sample_id) or Version()
                p.result = chain[p.sample_id] = Version(expect.rev + 1, writer, stamp)
        self._last_stamp = stamp
        return chain

    def _write(self, changes: list[Change], docs: dict[str, dict] | None = None,
               arrays: dict[str, set[str]] | None = None, behind: bool = False) -> None:
        """Journal, then write. ``docs``: the sample documents as resolved (after ``changes``);
        ``arrays``: per sample, the fields holding a label array at the version written on
        (``labels.label_arrays``: labels added to or removed from them go as ``$push`` / ``$pull``);
        ``behind``: written behind, where :meth:`write_behind` is on."""
        live = [c for c in changes if not c.empty]
        if not live:
            return
        chain = self._versioned(live)
        seqs = self.journal.append([c.patches for c in live])
        last = {p.sample_id: p for c in live for p in c.patches}
        requests, resolved = [], []
        for change in live:
            for p in change.patches:
                if docs and last[p.sample_id] is p:
                    resolved.append(p)  # after this sample's other patches: the bulk write is ordered
                else:
                    requests.append(sw.patch_update(p, (arrays or {}).get(p.sample_id, ())))
        expected = len(requests) + len(resolved)
        requests += sw.resolved_updates(resolved, docs)
        if self.queued:  # after the edits before it, which are still waiting
            self._queue(seqs, live, chain)
            return
        flight = InFlight(seqs, chain, [p.sample_id for c in live for p in c.patches], live, expected)
        if behind and self._behind is not None:  # journaled (fsynced) above: the edit is safe from here
            self._behind.start(flight, lambda: self._writer.write(requests, ordered=True))
            return
        try:
            result = self._writer.write(requests, ordered=True)
        except Exception as exc:
            if not sw.unconfirmed(exc):
                raise
            self._queue(seqs, live, chain)  # in the journal: written by resume() when the database is back
            return
        self._confirm(flight, result)

    def _confirm(self, flight: InFlight, result: sw.Written) -> None:
        """A write's answer: the journal marks and versions, or the conflict it found."""
        seqs, chain, ids, live, expected = flight.seqs, flight.chain, flight.ids, flight.live, flight.expected
        # Every update that applies sets a new revision, so it counts as modified.
        if result.modified == expected:
            self._written(seqs, chain, ids, live)
            return
        # Some conditional updates found a different version: find out which (the revision
        # names its writer, so another session's write of the same number is not taken for ours).
        now = {sid: version_of(d) for sid, d in reader.by_ids(self.dataset, ids, VERSION_FIELDS).items()}
        written = {sid for sid, version in chain.items() if now.get(sid) == version}
        if len(written) == len(chain):
            self._written(seqs, chain, ids, live)
            return
        self.versions.update({sid: chain[sid] for sid in written})
        for sid in set(ids) - written:
            self._cache.pop(sid, None)
        applied = [s for s, c in zip(seqs, live) if all(p.sample_id in written for p in c.patches)]
        self.journal.mark(applied)
        self.journal.mark([s for s in seqs if s not in applied], "rejected")
        self._reload(ids)
        raise ConflictError(sorted(set(ids) - written), live[0] if len(live) == 1 else None)

    def _written(self, seqs: list[int], chain: dict[str, Version], ids: list[str], live: list[Change]) -> None:
        self.journal.mark(seqs)
        self.versions.update(chain)
        self._stamp_cached(chain)
        self._reload(ids, live)

    def _reload(self, sample_ids: list[str], changes: list[Change] | None = None) -> None:
        """Bring FiftyOne's in-memory samples (if any) up to date with what was just written:
        the changed fields only, or everything when ``changes`` is None (a conflict)."""
        fields = None
        if changes is not None:
            fields = {"tags", *VERSION_FIELDS, *(lp.field for c in changes for p in c.patches for lp in p.labels)}
        sw.refresh_loaded(self.dataset, sample_ids, fields)

    # -- crash recovery ------------------------------------------------------------------
    def replay(self) -> dict:
        """Apply what dead sessions journaled but may not have written; returns counts, the
        patches that conflict with later changes by someone else (offered, not applied), the
        journal lines that could not be read (:class:`~maskreview.core.editing.journal.DamagedLine`)
        and the quarantine files that keep them (:func:`replay_message` says it all in words)."""
        report = {"applied": 0, "already": 0, "conflicts": [], "damaged": [], "quarantined": []}
        for orphan in jn.orphans(dataset_id(self.dataset), self._journal_root):
            report["damaged"] += orphan.damaged
            self._reapply([p for _, entry in orphan.entries for p in entry], report)
            orphan.release(delete=True)
            if orphan.damaged:
                report["quarantined"].append(orphan.quarantine_path)
        return report

    def _reapply(self, patches: list[SamplePatch], report: dict) -> None:
        """Write journaled patches that did not reach the database; count those that did; add to
        ``report["conflicts"]`` those whose sample changed since (or is gone)."""
        # A patch reached the database if the sample's version is the one it wrote or one a
        # later patch of the same journal wrote (those were conditional on it).
        position = {(p.sample_id, p.result): i for i, p in enumerate(patches)}
        for i, p in enumerate(patches):
            doc = reader.one(self.dataset, p.sample_id, VERSION_FIELDS)
            current = version_of(doc) if doc else None
            if current is None:
                report["conflicts"].append(p)
            elif position.get((p.sample_id, current), -1) >= i:
                report["already"] += 1
            elif p.expect is None or current.same_state(p.expect):
                try:
                    for lp in p.labels:
                        self._check_field(lp.field)
                except BadInputError:  # the field no longer holds labels that can be edited
                    report["conflicts"].append(p)
                    continue
                if self._writer.update_one(sw.patch_update(p)):
                    report["applied"] += 1
                    self._reload([p.sample_id])
                else:  # someone else wrote it since it was read, a moment ago
                    report["conflicts"].append(p)
            else:
                report["conflicts"].append(p)

    def close(self) -> None:
        self._land()
        if self._behind is not None:
            self._behind.close()
        self.journal.close()

    def __enter__(self) -> EditSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _dense(changes: list[Change], docs: dict[str, dict]) -> bool:
    """The changes patch one sample, in a field of it that holds more than :data:`RESOLVED_LABELS`
    labels in ``docs`` (what is written behind)."""
    patches = [p for c in changes for p in c.patches]
    doc = docs.get(patches[0].sample_id) if patches else None
    return doc is not None and all(p.sample_id == patches[0].sample_id for p in patches) and any(
        len((doc.get(lp.field) or {}).get("detections") or ()) > RESOLVED_LABELS for p in patches for lp in p.labels)


def replay_message(report: dict) -> str | None:
    """What :meth:`EditSession.replay` found, in words for the user; None when it found nothing."""
    said = []
    if report["applied"]:
        said.append(f"recovered {report['applied']} edit(s) that an interrupted session had not saved")
    if report["conflicts"]:
        said.append(f"{len(report['conflicts'])} journaled edit(s) not recovered: their samples changed since, or are gone")
    if damaged := report["damaged"]:
        said.append(f"{len(damaged)} damaged journal line(s) skipped ({damaged[0]}{', ...' if len(damaged) > 1 else ''}), "
                    f"kept in {', '.join(map(str, report['quarantined']))}")
    if not said:
        return None
    text = "; ".join(said)
    return text[0].upper() + text[1:] + ". Editing continues."


def _field_type(value) -> str | None:
    """The FiftyOne field type for a plain attribute value (None: leave it undeclared)."""
    for py, ftype in ((bool, "BooleanField"), (int, "IntField"), (float, "FloatField"), (str, "StringField")):
        if isinstance(value, py):
            return ftype
    return None


def _embedded_kwargs(fld) -> dict:
    """What ``add_sample_field`` needs besides the type to declare a copy of ``fld``."""
    out = {}
    if getattr(fld, "document_type", None) is not None:
        out["embedded_doc_type"] = fld.document_type
    if getattr(fld, "field", None) is not None:
        out["subfield"] = type(fld.field)
    return out
