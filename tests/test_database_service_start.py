"""Several commands started at the same moment on one private database folder (two
``infer --shard`` on one machine) share one database service: before, each found no service
running, each started its own mongod, and the one that could not lock the folder failed with
ServiceListenTimeout."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from conftest import REPO

CONNECT_AT = """
import os, sys, time
start = float(sys.argv[1])
from maskreview.core import store
while time.time() < start:
    time.sleep(0.001)
store.connect()
print("connected", flush=True)
"""


def test_commands_started_together_on_one_folder_all_reach_the_database(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("FIFTYONE_DATABASE_URI", "FIFTYONE_PRIVATE_DATABASE_PORT")}
    env.update(FIFTYONE_DATABASE_DIR=str(tmp_path / "db"), PYTHONPATH=str(REPO))
    start = time.time() + 8  # after every interpreter has imported maskreview
    procs = [subprocess.Popen([sys.executable, "-c", CONNECT_AT, repr(start)], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0 and "connected" in out, out[-600:]
