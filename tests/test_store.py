"""The database folder decides which datasets a process sees, even while other FiftyOne runs."""

from __future__ import annotations

import os
import subprocess
import sys

_HOLDER = """
import sys
from maskreview.core import store
fo = store.connect()
fo.Dataset("only-in-other-folder", persistent=True)
print("ready", flush=True)
sys.stdin.read()
"""


def test_other_database_folder_is_not_shared(fo, tmp_path):
    env = dict(os.environ, FIFTYONE_DATABASE_DIR=str(tmp_path / "other-db"))
    env.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert "only-in-other-folder" not in fo.list_datasets()
        # A fresh process on our folder does not attach to the other folder's mongod either.
        seen = subprocess.run([sys.executable, "-c", "from maskreview.core import store; "
                               "print(store.list_datasets())"], capture_output=True, text=True,
                              env=os.environ.copy(), timeout=120)
        assert seen.returncode == 0, seen.stderr
        assert "only-in-other-folder" not in seen.stdout
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
