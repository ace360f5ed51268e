"""Helpers for edit tests: a second process on the tests' database, a change that dies half-written."""

from __future__ import annotations

import os


def same_database_env() -> dict:
    """The environment for a child process that must use *this* process's database.

    FiftyOne's service discovery attaches a new process to any running FiftyOne mongod of the
    user, whatever its database dir, so children get the live connection's URI explicitly.
    """
    import fiftyone.core.odm.database as fod

    fod.get_db_conn()
    host, port = fod._client.address
    env = {k: v for k, v in os.environ.items() if k != "FIFTYONE_DATABASE_DIR"}
    env["FIFTYONE_DATABASE_URI"] = f"mongodb://{host}:{port}"
    return env


def journal_only(session, op):
    """Journal ``op`` the way ``EditSession`` does, but never write it: a process that dies
    between its journal and the database. Returns the change."""
    from maskreview.core.editing.resolver import Resolver

    change = Resolver(session._read(op.samples(), op.fields())).resolve(op)
    session._versioned([change])
    for f in op.fields():
        session._check_field(f)
    session.journal.append([change.patches])
    return change
