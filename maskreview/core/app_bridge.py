"""Working side by side with the FiftyOne App: maskreview's current view as FiftyOne view
stages, and the App's server for the same database on a loopback port.

:class:`ViewSpec` is what the browser shows (filters, tag, class, drill-down, sort order) as
plain data; :func:`build_view` turns it into a ``DatasetView`` (``match_tags``,
``filter_labels``, ``select``, ``sort_by``...). :class:`AppServer` runs FiftyOne's own server
(``fiftyone.server.main``) in a child process watched by FiftyOne's service wrapper, so it
stops when this process ends, even by a crash; :func:`open_in_app` starts or reuses one and
points a FiftyOne session (:func:`fiftyone.launch_app` with ``remote=True``) at the view.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
import logging
import webbrowser
from urllib.parse import quote

from maskreview.core.errors import BadInputError, MaskreviewError
from maskreview.core.store import app_session, database_address, dataset_id, fiftyone, user_cache_dir
from maskreview.core.field_docs import describe

ADDRESS = "127.0.0.1"
START_TIMEOUT_S = 90.0
SORTS = ("fp", "fn", "f1")  # evaluation orders: most FP, most FN, worst F1 first


@dataclass(frozen=True)
class ViewSpec:
    """The samples and labels maskreview shows, in its order."""

    text: str = ""  # filename contains (case-insensitive)
    tag: str | None = None  # sample tag
    label_class: tuple[str, str] | None = None  # (field, class): samples with such an instance
    min_confidence: float = 0.0  # labels scoring less are hidden (unscored ones are kept)
    score_fields: tuple[str, ...] = ()  # the fields min_confidence applies to
    sample_ids: tuple[str, ...] | None = None  # a drill-down (confusion cell, failure group...)
    label_ids: tuple[str, ...] | None = None  # ...and the labels it is about
    sort: tuple[str, str | None, tuple[str, ...]] | None = None  # (by, eval key, sample ids in that order)
    saved_view: str | None = None  # start from this saved view

    def describe(self) -> str:
        parts = [f"saved view {self.saved_view!r}"] if self.saved_view else []
        if self.text:
            parts.append(f"filename contains {self.text!r}")
        if self.tag:
            parts.append(f"tag {self.tag}")
        if self.label_class:
            parts.append(f"{self.label_class[1]} in {self.label_class[0]}")
        if self.min_confidence > 0:
            parts.append(f"confidence >= {self.min_confidence:.2f}")
        if self.sample_ids is not None:
            parts.append(f"{len(self.sample_ids)} selected samples")
        if self.sort:
            parts.append(f"sorted by {self.sort[0]}")
        return ", ".join(parts) or "all samples"


def _confident(F, threshold: float):
    return (F("confidence") >= threshold) | ~F("confidence").exists()


def build_view(dataset, spec: ViewSpec):
    """The FiftyOne view showing what ``spec`` shows, as named stages the App lists."""

    F = fiftyone().ViewField
    if spec.saved_view and not dataset.has_saved_view(spec.saved_view):
        known = ", ".join(dataset.list_saved_views()) or "none"
        raise BadInputError(f"dataset {dataset.name!r} has no saved view {spec.saved_view!r} (saved views: {known})")
    view = dataset.load_saved_view(spec.saved_view) if spec.saved_view else dataset.view()
    if spec.text:
        view = view.match(F("filepath").re_match(f"[^/]*{re.escape(spec.text)}[^/]*$", options="i"))
    if spec.tag:
        view = view.match_tags(spec.tag)
    if spec.min_confidence > 0:
        for field in spec.score_fields:
            view = view.filter_labels(field, _confident(F, spec.min_confidence), only_matches=False)
    if spec.label_class:
        field, cls = spec.label_class
        condition = F("label") == cls
        if spec.min_confidence > 0:
            condition = condition & _confident(F, spec.min_confidence)
        view = view.match(F(f"{field}.detections").filter(condition).length() > 0)
    if spec.sample_ids is not None:
        view = view.select(list(spec.sample_ids))
    if spec.label_ids is not None:
        view = view.select_labels(ids=list(spec.label_ids))
    if spec.sort:
        by, eval_key, order = spec.sort
        if by in ("fp", "fn") and eval_key and f"{eval_key}_{by}" in dataset.get_field_schema():
            view = view.sort_by(f"{eval_key}_{by}", reverse=True)
        else:  # per-sample F1 is no field: the order itself
            view = view.select(list(order), ordered=True)
    return view


# ---------------------------------------------------------------------------- the server
def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now (connections closing on it do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ADDRESS, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ADDRESS, 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0):
    import requests

    return requests.get(url, timeout=timeout)


def graphql(port: int, query: str, variables: dict | None = None, timeout: float = 30.0) -> dict:
    """POST a GraphQL query to the App server on ``port``; returns ``data``."""
    import requests

    r = requests.post(f"http://{ADDRESS}:{port}/graphql", json={"query": query, "variables": variables or {}},
                      timeout=timeout)
    r.raise_for_status()
    body = r.json()
    if body.get("errors"):
        raise MaskreviewError(f"the FiftyOne App server answered: {body['errors'][0].get('message')}")
    return body["data"]


def fiftyone_server_version(port: int) -> str | None:
    """The version a FiftyOne App server on ``port`` reports, None when none answers."""
    try:
        return _get(f"http://{ADDRESS}:{port}/fiftyone").json().get("version")
    except Exception:
        return None


def serves_dataset(port: int, dataset) -> bool:
    """Whether the App server on ``port`` reads this very dataset (the same database)."""
    try:
        data = graphql(port, "query ($name: String!) { dataset(name: $name) { datasetId } }", {"name": dataset.name})
    except Exception:
        return False

    return bool(data.get("dataset")) and data["dataset"]["datasetId"] == dataset_id(dataset)


def _server_env() -> dict:
    """The child's environment: this process's database, by the live connection's address when
    it is our own mongod (FiftyOne's service discovery could attach the child to another)."""

    env = dict(os.environ)
    env.pop("FIFTYONE_DISABLE_SERVICES", None)
    if not env.get("FIFTYONE_DATABASE_URI"):
        host, port = database_address()
        env.pop("FIFTYONE_DATABASE_DIR", None)
        env["FIFTYONE_DATABASE_URI"] = f"mongodb://{host}:{port}"
    return env


class AppServer:
    """FiftyOne's App server in a child process on ``127.0.0.1:port``."""

    def __init__(self, port: int, process: subprocess.Popen | None, log_path: Path | None):
        self.port, self.process, self.log_path = port, process, log_path

    @property
    def url(self) -> str:
        return f"http://{ADDRESS}:{self.port}/"

    def dataset_url(self, name: str) -> str:

        return f"{self.url}datasets/{quote(name, safe='')}"

    def alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            return False
        return fiftyone_server_version(self.port) is not None

    def stop(self, timeout: float = 10.0, wait: bool = True) -> None:
        """Stop the server (only one this process started); ``wait=False`` returns at once (the
        server takes a few seconds to shut down gracefully)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.stdin.close()  # FiftyOne's service wrapper then stops the server and exits
            if not wait:
                return
            proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(t.strip() for t in text[-lines:] if t.strip())[:400]


def start_server(port: int | None = None, timeout: float = START_TIMEOUT_S) -> AppServer:
    """Start FiftyOne's App server on ``port`` (a free one when None); raise a
    :class:`MaskreviewError` naming the port when it is taken or the server does not come up."""
    import fiftyone.constants as foc


    fiftyone()
    if port is None:
        port = free_port()
    elif not port_is_free(port):
        what = "a FiftyOne App server of another database" if fiftyone_server_version(port) else "another program"
        raise BadInputError(f"port {port} on {ADDRESS} is in use by {what}; choose another port (--port), "
                            "or leave it out to take a free one")
    log_dir = user_cache_dir() / "app-server"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"server-{port}.log"
    wrapper = Path(foc.FIFTYONE_DIR) / "service" / "main.py"
    command = [sys.executable, str(wrapper), "--51-service", "maskreview-app", sys.executable, "-m",
               "fiftyone.server.main", "--port", str(port), "--address", ADDRESS]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                cwd=foc.SERVER_DIR, env=_server_env())
    server = AppServer(port, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MaskreviewError(f"the FiftyOne App server on port {port} exited at start ({_log_tail(log_path)}); "
                                  f"its log: {log_path}")
        if fiftyone_server_version(port) is not None:
            return server
        time.sleep(0.5)
    server.stop()
    raise MaskreviewError(f"the FiftyOne App server did not answer on port {port} within {timeout:.0f} s; "
                          f"its log: {log_path}")


# ---------------------------------------------------------------------------- sessions
_server: AppServer | None = None
_session = None


def running_server() -> AppServer | None:
    return _server if _server is not None and _server.alive() else None


def ensure_server(dataset, port: int | None = None) -> AppServer:
    """This process's server when it runs (a second launch reuses it); else one already
    serving this dataset on ``port``; else a new one."""
    global _server
    if (server := running_server()) is not None:
        return server
    if port is not None and not port_is_free(port) and serves_dataset(port, dataset):
        _server = AppServer(port, None, None)  # someone else's (another maskreview app): not ours to stop
        return _server
    _server = start_server(port)
    return _server


def show(dataset, view=None, port: int | None = None):
    """Start or reuse the App server and show ``view`` of ``dataset`` there; returns the server."""
    global _session

    fo = _quiet_fiftyone()
    server = ensure_server(dataset, port)
    describe(dataset)  # the App's sidebar explains maskreview's fields
    view = view if view is not None else dataset.view()
    if _session is not None and _session.server_port == server.port and app_session.connected(_session):
        _session.view = view
    else:
        if _session is not None:
            close_session()
        _session = fo.launch_app(view=view, port=server.port, address=ADDRESS, remote=True, auto=False)
    return server


def _quiet_fiftyone():
    """FiftyOne, its session and services logging at warning level only (no remote-session banner)."""


    fo = fiftyone()
    for name in ("fiftyone.core.session", "fiftyone.core.service"):  # "Connected to FiftyOne on port..."
        logging.getLogger(name).setLevel(logging.WARNING)
    return fo


def close_session() -> None:
    global _session
    session, _session = _session, None
    if session is not None:
        try:
            app_session.disconnect(session)
        except Exception:  # the server may be gone already
            pass


def shutdown(wait: bool = True) -> None:
    """Close the session and stop the server this process started (the app quits)."""
    global _server
    close_session()
    server, _server = _server, None
    if server is not None:
        server.stop(wait=wait)


def open_browser(url: str) -> bool:

    return webbrowser.open(url, new=2)


# ---------------------------------------------------------------------------- saved views
def save_view(dataset, name: str, view, description: str | None = None, overwrite: bool = False) -> None:
    """Save ``view`` as the FiftyOne saved view ``name`` (the App lists it)."""
    name = (name or "").strip()
    if not name:
        raise BadInputError("a saved view needs a name")
    if dataset.has_saved_view(name) and not overwrite:
        raise BadInputError(f"dataset {dataset.name!r} already has a saved view {name!r}; choose another name")
    dataset.save_view(name, view, description=description, overwrite=overwrite)


def saved_views(dataset) -> list[str]:
    """The dataset's saved views (made here or in the App), as stored now."""
    dataset.reload()
    return list(dataset.list_saved_views())


def serve_until_stopped(server: AppServer) -> None:
    """Block while the server this process started runs (Ctrl+C ends it)."""
    if server.process is not None:
        server.process.wait()
