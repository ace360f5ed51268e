"""FiftyOne's database: where it lives, connecting to it, and dataset handles.

FiftyOne reads its database settings when it is first imported, so :func:`configure` must run
before anything imports ``fiftyone``; every module in maskreview gets FiftyOne through
:func:`fiftyone` to keep that order.

Where the database lives, first match wins: the ``database_uri`` argument (``--database-uri``),
``FIFTYONE_DATABASE_URI`` (a shared MongoDB), ``FIFTYONE_DATABASE_DIR``, else a folder under
the user's data dir (platformdirs), so the app never touches ``~/.fiftyone`` of other tools.

This package is the only code that talks to MongoDB or uses FiftyOne's internals
(``tests/test_store_seam.py``): :mod:`.reader` reads sample documents (projected, batched),
:mod:`.writer` writes them (bulk, conditional, durable; an edit's patch as an update pipeline),
:mod:`.metadata_lock` locks a dataset's own document, :mod:`.codec` turns stored mask bytes into
arrays and back, :mod:`.health` probes, :mod:`.app_session` holds the App session's private bits.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from types import ModuleType
import atexit
import gc
import hashlib

from maskreview.core.errors import DatabaseError

APP_NAME = "maskreview"
_configured = False
_PORT_FOLDER_VAR = "MASKREVIEW_DATABASE_PORT_FOLDER"  # which folder FIFTYONE_PRIVATE_DATABASE_PORT serves


def user_data_dir() -> Path:
    from platformdirs import user_data_dir as _udd

    return Path(os.environ.get("MASKREVIEW_DATA_DIR") or _udd(APP_NAME, appauthor=False))


def user_config_dir() -> Path:
    """Settings (``gui.ini``, ``tag_keys.json``): the XDG config dir on Linux."""
    from platformdirs import user_config_dir as _ucfg

    return Path(os.environ.get("MASKREVIEW_CONFIG_DIR") or _ucfg(APP_NAME, appauthor=False))


def user_cache_dir() -> Path:
    from platformdirs import user_cache_dir as _ucd

    return Path(os.environ.get("MASKREVIEW_CACHE_DIR") or _ucd(APP_NAME, appauthor=False))


def default_database_dir() -> Path:
    return user_data_dir() / "fiftyone-db"


def configure(database_uri: str | None = None, database_dir: str | os.PathLike | None = None) -> None:
    """Decide where FiftyOne's database lives. Call before FiftyOne is imported; idempotent."""
    global _configured
    if database_uri:
        os.environ["FIFTYONE_DATABASE_URI"] = database_uri
    elif database_dir:
        os.environ["FIFTYONE_DATABASE_DIR"] = str(database_dir)
    if not os.environ.get("FIFTYONE_DATABASE_URI") and not os.environ.get("FIFTYONE_DATABASE_DIR"):
        os.environ["FIFTYONE_DATABASE_DIR"] = str(default_database_dir())
    if "fiftyone" not in sys.modules and os.environ.get("FIFTYONE_DATABASE_DIR") and (
            os.environ.get(_PORT_FOLDER_VAR) != os.path.realpath(os.environ["FIFTYONE_DATABASE_DIR"])):
        # A port inherited from a parent FiftyOne process that serves another folder (a child of
        # ours on the same folder keeps it and skips looking for the service).
        os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
    # Our bundled mongod is MongoDB 5; FiftyOne would refuse it as older than 6.
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
    if "fiftyone" in sys.modules:  # already imported (e.g. by a test): update its live config
        fo = sys.modules["fiftyone"]
        if os.environ.get("FIFTYONE_DATABASE_URI"):
            fo.config.database_uri = os.environ["FIFTYONE_DATABASE_URI"]
        else:
            fo.config.database_dir = os.environ["FIFTYONE_DATABASE_DIR"]
        fo.config.database_validation = False
    _configured = True


def fiftyone() -> ModuleType:
    """The ``fiftyone`` module, imported after :func:`configure`."""
    if not _configured:
        configure()
    import fiftyone as fo

    # FiftyOne leaves pydantic half imported (the rest comes with fiftyone.utils.eval). If PySide6
    # is imported in between, its import hook inspects pydantic's lazy module attributes and the
    # later import fails as "circular". Finishing pydantic's import now closes that window (no
    # public module finishes it short of fiftyone.utils.eval, which costs start-up time).
    import pydantic._internal._validators  # noqa: F401

    _isolate_database_service()
    _bound_database_waits()
    _keep_import_time_objects_out_of_collections()
    return fo


_frozen = False


def _keep_import_time_objects_out_of_collections() -> None:
    """Once, after FiftyOne's import: every object alive now goes to the collector's permanent
    generation (``gc.freeze``, O(1)), which cyclic collections do not walk.

    FiftyOne's import leaves ~230,000 tracked objects (modules, classes, functions, their dicts)
    that live as long as the process, and a full collection walks every one: 0.3-0.5 s CPU, in
    whichever step of the reviewer's it falls (a window edit of 630 ms in the quiet bench on
    61187c8, 26 ms with them frozen). Objects made later are collected as before; the cost is
    that a reference cycle alive now that becomes garbage later is never freed (what exists at
    this point is import-time state, kept anyway)."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


DEFAULT_DATABASE_TIMEOUT_S = 3.0


def _bound_database_waits() -> None:
    """Give up on an unreachable database after seconds, not pymongo's 30 s per operation.

    A long command makes many operations; with mongod gone each one waited 30 s before it
    failed (infer took two minutes to stop; now about ten seconds). A reachable server is
    selected at once, and our own mongod accepts connections before FiftyOne connects, so the
    short wait costs nothing. FiftyOne passes these keyword arguments to every client it
    makes. ``MASKREVIEW_DATABASE_TIMEOUT_S`` changes the wait; a
    ``serverSelectionTimeoutMS`` in ``--database-uri`` wins over both.
    """
    import fiftyone.core.odm.database as fod

    uri = os.environ.get("FIFTYONE_DATABASE_URI") or ""
    if "serverselectiontimeoutms" in uri.lower():
        return
    try:
        seconds = float(os.environ.get("MASKREVIEW_DATABASE_TIMEOUT_S") or DEFAULT_DATABASE_TIMEOUT_S)
    except ValueError:
        seconds = DEFAULT_DATABASE_TIMEOUT_S
    fod._connection_kwargs.setdefault("serverSelectionTimeoutMS", int(max(seconds, 0.1) * 1000))


def lost_database(exc: BaseException) -> DatabaseError | None:
    """A :class:`DatabaseError` when ``exc`` (or what it was raised from) is a lost database connection."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if _is_connection_failure(exc):
            return DatabaseError(
                f"lost FiftyOne's database at {_where()} ({type(exc).__name__}: {_short(exc)}); what was written so far "
                "is kept: start the database again (or check --database-uri) and rerun the same command to go on")
        exc = exc.__cause__ or exc.__context__
    return None


def _short(exc: BaseException) -> str:
    """pymongo's messages go on with timeouts and a topology description; the first part says it."""
    return (re.split(r" \(configured timeouts|, Timeout: ", str(exc))[0].splitlines() or [""])[0][:200]


def _where() -> str:
    uri = os.environ.get("FIFTYONE_DATABASE_URI")
    return re.sub(r"//[^@/]*@", "//", uri) if uri else str(os.environ.get("FIFTYONE_DATABASE_DIR"))  # no password


def forget_lost_database() -> None:
    """Skip FiftyOne's exit-time cleanup, which would wait on the lost database once more."""

    import fiftyone.core.odm.database as fod

    atexit.unregister(fod._delete_non_persistent_datasets_if_allowed)


def _is_connection_failure(exc: BaseException) -> bool:
    pymongo_errors = sys.modules.get("pymongo.errors")
    if pymongo_errors is not None and isinstance(exc, pymongo_errors.ConnectionFailure):
        return True
    return type(exc).__module__.startswith("mongoengine") and type(exc).__name__ == "ConnectionFailure"


def _isolate_database_service() -> None:
    """Give our mongod a service name of its own, derived from the database folder.

    FiftyOne finds a running database service by its command line (``--51-service db``) and
    attaches to the first one of the user's, whatever folder that one serves. Without this, the
    app or a test run would silently share the datasets of any other FiftyOne process running.
    FiftyOne has no setting for the name: the class attribute is the only way (kept here, in the seam).
    """
    if os.environ.get("FIFTYONE_DATABASE_URI"):
        return

    import fiftyone.core.service as fos

    folder = os.path.realpath(os.environ["FIFTYONE_DATABASE_DIR"])
    os.environ[_PORT_FOLDER_VAR] = folder
    fos.DatabaseService.service_name = "maskreview-db-" + hashlib.sha1(folder.encode()).hexdigest()[:12]
    if not getattr(fos.DatabaseService.start, "_maskreview_wrapped", False):
        fos.DatabaseService.start = _one_start_at_a_time(_service_output_to_log(fos.DatabaseService.start))


def _one_start_at_a_time(start):
    """Processes on one database folder start or find its service one at a time.

    FiftyOne looks for a running service, and starts one when it finds none. Two processes
    started in the same second (two ``infer --shard`` on one machine) both found none; the
    second one's mongod could not lock the folder, and that command failed with
    ServiceListenTimeout. A lock file in the folder, held until the service listens, makes the
    later ones find the first one's service and attach to it.
    """
    try:
        import fcntl  # noqa: PLC0415 - POSIX only: elsewhere starts are not serialised
    except ImportError:
        return start

    def start_locked(service):
        folder = Path(os.environ["FIFTYONE_DATABASE_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "maskreview-service.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                start(service)
                service.port  # waits until its mongod listens (FiftyOne asks for it next anyway)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    start_locked._maskreview_wrapped = True
    return start_locked


def _service_output_to_log(start):
    """The database service inherits our stdout and stderr; give it a log file instead.

    When mongod dies, the service dumps mongod's output and "Subprocess ... exited with error"
    onto the terminal, around the command's own one-line error.
    """
    def start_with_log(service):
        log_dir = Path(os.environ["FIFTYONE_DATABASE_DIR"]) / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "service.log", "ab") as log:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:
                    stream.flush()
            try:
                saved = os.dup(1), os.dup(2)
            except OSError:  # no standard streams (a windowed app): nothing to keep clean
                return start(service)
            try:  # the child inherits file descriptors 1 and 2 as they are at its start
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                start(service)
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])

    return start_with_log


def connect() -> ModuleType:
    """Make sure the database answers; raise :class:`DatabaseError` with what to do if not."""
    uri = os.environ.get("FIFTYONE_DATABASE_URI")
    if uri and not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise DatabaseError(f"{_where()}: not a MongoDB URI (mongodb://HOST:PORT/...), given as --database-uri "
                            "or FIFTYONE_DATABASE_URI")
    fo = fiftyone()
    try:
        fo.list_datasets()
    except Exception as exc:  # mongod missing, port taken, bad URI, auth...
        hint = ("Check that MongoDB runs there and the URI is right" if uri else
                "Check the folder is writable and not used by another MongoDB, or point "
                "--database-uri / FIFTYONE_DATABASE_URI at a running MongoDB")
        raise DatabaseError(
            f"cannot reach FiftyOne's database at {_where()}: {exc.__class__.__name__}: {_short(exc)}. {hint}."
        ) from exc
    return fo


def list_datasets() -> list[str]:
    return list(connect().list_datasets())


def dataset_id(dataset) -> str:
    """The dataset's id in the database (what the App's ``datasetId`` is); no public accessor."""
    return str(dataset._doc.id)


def dataset_of(collection):
    """The dataset a view (or a dataset itself) serves samples from.

    FiftyOne has no public accessor: ``fo.load_dataset(view.dataset_name)`` returns the same
    object but saves the dataset's document (``last_loaded_at``) on every call, a write that
    races the GUI's own copy when it runs on a worker thread."""
    return collection._root_dataset


def view_key(view) -> tuple[str, str]:
    """What a view's samples are, as a key: its dataset's sample collection and its pipeline (JSON).
    FiftyOne has no public accessor for either."""
    from bson import json_util

    return view._dataset._sample_collection_name, json_util.dumps(view._pipeline())


def database_address() -> tuple[str, int]:
    """``(host, port)`` of the live connection to the database (our own mongod's, when FiftyOne runs it)."""
    import fiftyone.core.odm.database as fod

    fiftyone()
    return fod.get_db_client().address
