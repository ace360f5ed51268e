"""A lock, held in the database, around changes to a dataset's own document (schema, ``info``).

FiftyOne saves a dataset's document as ``$set`` of whole changed fields (the field list, the
whole ``info`` dict) from the copy in memory. Two processes that each add a field, or each record
a run, from copies loaded before the other's write lose one of the two. Workers that hold this
lock, reload, change and save cannot (``--shard`` workers, distributed inference ranks).

The lock is a document ``{"_id": "dataset:<id>", "owner", "at"}`` in the collection
``maskreview_locks``: inserted to take it (a duplicate key means someone holds it), deleted to
release it. A holder that died leaves it behind: after ``stale_s`` it is taken over.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from maskreview.core.errors import DatabaseError
from maskreview.core.store import fiftyone

COLLECTION = "maskreview_locks"


def _collection():
    from pymongo import WriteConcern


    fiftyone()
    import fiftyone.core.odm.database as fod

    coll = fod.get_db_conn()[COLLECTION]
    replica_set = "setName" in coll.database.client.admin.command("hello")
    return coll.with_options(write_concern=WriteConcern(w="majority" if replica_set else 1, j=True,
                                                        wtimeout=10_000 if replica_set else None))


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@contextmanager
def dataset_metadata_lock(dataset, wait_s: float = 120.0, stale_s: float = 60.0):
    """Hold the metadata lock of ``dataset`` (waits up to ``wait_s``), then reload it, so what
    the block changes starts from the database's state."""
    from pymongo.errors import DuplicateKeyError

    coll = _collection()
    key = f"dataset:{dataset._doc.id}"
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            coll.insert_one({"_id": key, "owner": owner, "at": _utcnow()})
            break
        except DuplicateKeyError:
            coll.delete_one({"_id": key, "at": {"$lt": _utcnow() - timedelta(seconds=stale_s)}})
            if time.monotonic() > deadline:
                holder = (coll.find_one({"_id": key}) or {}).get("owner", "?")
                raise DatabaseError(f"dataset {dataset.name!r}: its metadata stayed locked by {holder} for "
                                    f"{wait_s:.0f} s; try again") from None
            time.sleep(0.05)
    try:
        dataset.reload()
        yield
    finally:
        coll.delete_one({"_id": key, "owner": owner})
