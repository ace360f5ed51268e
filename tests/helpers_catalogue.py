"""The bad-input catalogue's driver: runs many CLI cases in one process and records what each did.

``python tests/helpers_catalogue.py CASES.json RESULTS.json`` runs every case of CASES.json
(``{"id", "argv", "cwd", "isolated", "watch"}``, and ``env`` for isolated ones) through ``maskreview.cli.main(argv)``, one after
the other in this process, so the heavy imports (FiftyOne, torch, detectron2) happen once.

What a case sees is what a user would: stdout and stderr are captured at the file-descriptor
level (logging handlers, C libraries and warnings included); an exception that escapes ``main``
is printed as Python prints it at the top level (a traceback, exit 1), and ``SystemExit``
(argparse) gives its code. So the handling under test is ``main``'s own. Warning registries are
cleared before each case, so a warning shown once is shown again as a fresh process would.
``isolated`` cases run as ``python -m maskreview`` in a subprocess instead (the database-fault
cases, and a few rows that check the in-process results match a real process).

Before and after each case it fingerprints the database (every collection's documents, minus
``last_loaded_at``, which merely loading a dataset updates) and the ``watch`` folders (every
file's size, mode and content hash), and reports what appeared, changed or disappeared.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

CASE_TIMEOUT_S = 120
ISOLATED_TIMEOUT_S = 60
MEMORY_LIMIT_BYTES = 12 * 2**30  # a case that tries to allocate a huge image fails here, not in the OOM killer
_VOLATILE_KEYS = {"last_loaded_at"}


class CaseTimeout(BaseException):
    pass


def database_fingerprint() -> dict[str, str]:
    """``"collection/_id.key"`` -> a hash of that value, for every document of every collection."""
    import bson
    import fiftyone.core.odm.database as fod

    db = fod.get_db_conn()
    prints = {}
    for name in sorted(db.list_collection_names()):
        for doc in db[name].find({}):
            doc_id = doc.pop("_id")
            prints[f"{name}/{doc_id}"] = "document"
            for key, value in doc.items():
                if key not in _VOLATILE_KEYS:
                    prints[f"{name}/{doc_id}.{key}"] = hashlib.sha1(bson.encode({"v": value})).hexdigest()
    return prints


def files_fingerprint(folders: list[str]) -> dict[str, str]:
    prints = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if os.path.isdir(path) and not os.path.islink(path):
                    prints[path] = f"dir {st.st_mode:o}"
                    continue
                prints[path] = f"{st.st_size} {st.st_mode:o} {_content_hash(path, st)}"
    return prints


_hashes: dict[tuple, str] = {}  # (path, size, mtime, inode) -> content hash: unchanged files are not read again


def _content_hash(path: str, st) -> str:
    import stat

    if not stat.S_ISREG(st.st_mode):
        return "special"
    if st.st_size > 2**20:  # large files (weights): size and mtime are enough to see a rewrite
        return f"mtime {st.st_mtime_ns}"
    key = (path, st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _hashes:
        try:
            with open(path, "rb") as f:
                _hashes[key] = hashlib.sha1(f.read()).hexdigest()
        except OSError:
            return "unreadable"
    return _hashes[key]


def _diff(before: dict, after: dict) -> dict[str, list[str]]:
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(k for k in set(before) & set(after) if before[k] != after[k]),
    }


def _clear_warning_registries() -> None:
    for module in list(sys.modules.values()):
        registry = getattr(module, "__warningregistry__", None)
        if isinstance(registry, dict):
            registry.clear()
    warnings._filters_mutated()  # drops the "already shown" caches (the filters stay as the app set them)


def _reset_process_state() -> None:
    """Undo what a command sets for the rest of its process (a new process would start without it)."""
    from maskreview.core import images

    images.set_max_pixels(None)


def _alarm(signum, frame):
    raise CaseTimeout()


def run_in_process(argv: list[str]) -> tuple[object, str, str]:
    from maskreview import cli

    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        signal.alarm(CASE_TIMEOUT_S)
        try:
            try:
                rc = cli.main(list(argv))
            except SystemExit as exc:
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except CaseTimeout:
                rc = "timeout"
            except BaseException:  # noqa: BLE001 - what the interpreter would print at the top level
                traceback.print_exc()
                rc = 1
        except CaseTimeout:
            rc = "timeout"
        finally:
            signal.alarm(0)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        out.seek(0)
        err.seek(0)
        return (0 if rc is None else rc), out.read().decode(errors="replace"), err.read().decode(errors="replace")


def run_isolated(argv: list[str], cwd: str, env: dict | None = None) -> tuple[object, str, str]:
    try:
        proc = subprocess.run([sys.executable, "-m", "maskreview", *argv], capture_output=True, text=True,
                              timeout=ISOLATED_TIMEOUT_S, cwd=cwd, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as exc:
        return "timeout", str(exc.stdout or ""), str(exc.stderr or "")
    return proc.returncode, proc.stdout, proc.stderr


def run_cases(cases: list[dict], results_file: str) -> None:
    """Run the cases in order, appending one JSON line per finished case to ``results_file``."""
    from maskreview.core import store

    fo = store.connect()
    signal.signal(signal.SIGALRM, _alarm)
    for case in cases:
        os.chdir(case["cwd"])
        datasets, db, files = set(fo.list_datasets()), database_fingerprint(), files_fingerprint(case["watch"])
        _clear_warning_registries()
        fo.Dataset._instances.clear()  # each case loads its datasets afresh, as a new process would
        start = time.monotonic()
        if case["isolated"]:
            rc, out, err = run_isolated(case["argv"], case["cwd"], case.get("env"))
        else:
            rc, out, err = run_in_process(case["argv"])
        seconds = time.monotonic() - start
        store.configure()  # a case may have pointed FiftyOne elsewhere; the fingerprints read ours
        _reset_process_state()
        new_datasets = set(fo.list_datasets())
        record = {
            "id": case["id"], "rc": rc, "stdout": out, "stderr": err, "seconds": round(seconds, 2),
            "datasets_added": sorted(new_datasets - datasets), "datasets_removed": sorted(datasets - new_datasets),
            "database": _diff(db, database_fingerprint()), "files": _diff(files, files_fingerprint(case["watch"])),
        }
        with open(results_file, "a") as f:
            f.write(json.dumps(record) + "\n")


def main() -> None:
    cases_file, results_file = sys.argv[1:3]
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    run_cases(json.loads(Path(cases_file).read_text()), results_file)


def run_driver(cases: list[dict], workdir: Path, env: dict | None = None) -> dict[str, dict]:
    """Run ``cases`` in driver processes. A case that kills its driver, or hangs it where the alarm
    cannot reach (inside C code), is recorded as such; the rest go on in a new driver."""
    results: dict[str, dict] = {}
    remaining = list(cases)
    round_ = 0
    while remaining:
        round_ += 1
        cases_file, results_file = workdir / f"cases-{round_}.json", workdir / f"results-{round_}.jsonl"
        cases_file.write_text(json.dumps(remaining, indent=1))
        results_file.write_text("")
        rc, stderr = _watch(cases_file, results_file, env)
        for line in results_file.read_text().splitlines():
            record = json.loads(line)
            results[record.pop("id")] = record
        remaining = [case for case in remaining if case["id"] not in results]
        if rc == 0 or not remaining:
            break
        lost = remaining.pop(0)
        results[lost["id"]] = {"rc": f"the driver {'hung' if rc == 'hung' else f'died (exit {rc})'} in this case",
                               "stdout": "", "stderr": stderr[-3000:], "seconds": None, "datasets_added": [],
                               "datasets_removed": [], "database": {}, "files": {}}
    return results


def _watch(cases_file: Path, results_file: Path, env: dict | None) -> tuple[object, str]:
    """Run one driver; kill it when no case has finished for longer than a case may take."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, __file__, str(cases_file), str(results_file)],
                                stdout=subprocess.DEVNULL, stderr=err, env=env or os.environ.copy())
        done, last_progress = 0, time.monotonic()
        while proc.poll() is None:
            time.sleep(0.2)
            finished = results_file.read_text().count("\n")
            if finished != done:
                done, last_progress = finished, time.monotonic()
            elif time.monotonic() - last_progress > max(CASE_TIMEOUT_S, ISOLATED_TIMEOUT_S) + 60:
                proc.kill()
                proc.wait()
                return "hung", ""
        err.seek(0)
        return proc.returncode, err.read().decode(errors="replace")


if __name__ == "__main__":
    main()
