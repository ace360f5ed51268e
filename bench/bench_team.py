"""What scales how for a team (README, "Working as a team"): inference workers and editors per database.

Inference (the demo model on CPU, ``N_IMAGES`` demo scenes of 256 px): one ``maskreview infer``
process (the peer), two ``--shard`` workers at once, and one ``--num-gpus 2`` run (detectron2's
launcher, two ranks). Printed: wall time, samples per hour, and the ratio to the peer; each
command's own img/s line is the model loop alone (without start-up: importing torch, loading
the model, about 5-10 s per process).

Edits (each a single-sample tag through ``EditSession``: journal fsync + one durable conditional
write, what one reviewer's click costs): one and two editor processes, against a standalone
mongod (``w: 1, j: true``) and a 3-member replica set on this machine (``w: majority, j: true``).
Printed: edits per second (all editors together) and the ratio to one editor on a standalone
mongod. Everything runs on this machine (loopback): a real network adds its round trips.

``python bench/bench_team.py [--images N] [--edits N]``; prints ``uptime`` first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "packaging"))

import benchkit  # noqa: E402
from replica_set import ReplicaSet, mongod_binary  # noqa: E402


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(root: Path, uri: str) -> dict:
    env = dict(os.environ, FIFTYONE_DATABASE_URI=uri, MASKREVIEW_DATA_DIR=str(root / "data"),
               MASKREVIEW_CACHE_DIR=str(root / "cache"), MASKREVIEW_CONFIG_DIR=str(root / "config"))
    for name in ("FIFTYONE_DATABASE_DIR", "FIFTYONE_PRIVATE_DATABASE_PORT", "MASKREVIEW_DATABASE_PORT_FOLDER"):
        env.pop(name, None)
    return env


def _cli(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "maskreview", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _done(proc) -> str:
    out, err = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {proc.args}\n{err[-3000:]}")
    return out


class Standalone:
    def __init__(self, root: Path):
        self.port, self.folder = _free_port(), root
        root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([mongod_binary(), "--dbpath", str(root), "--port", str(self.port), "--bind_ip",
                                      "127.0.0.1", "--nounixsocket", "--logpath", str(root / "mongod.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import pymongo

        pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=60_000).admin.command("ping")

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def inference(root: Path, uri: str, n_images: int) -> list[tuple]:
    env = _env(root, uri)
    scenes = root / "scenes"
    subprocess.run([sys.executable, "-m", "maskreview", "demo-data", "--out", str(scenes), "--n", str(n_images),
                    "--seed", "21"], cwd=REPO, env=env, check=True, capture_output=True)
    for name in ("single", "shards", "ranks"):
        _done(_cli(env, "import", str(scenes / "annotations.json"), "--name", name))
    infer = ("--model", "demo", "--device", "cpu")
    rows = []

    def timed(label, procs):
        start = time.perf_counter()
        outs = [_done(p) for p in procs]
        wall = time.perf_counter() - start
        loop = [float(x) for out in outs for x in re.findall(r"\(([\d.]+) img/s\)", out)]
        rows.append((label, len(procs) if label != "--num-gpus 2 (2 ranks)" else 2, wall, n_images / wall * 3600,
                     sum(loop)))

    timed("one process (peer)", [_cli(env, "infer", "single", *infer)])
    timed("--shard 0/2 and 1/2 at once", [_cli(env, "infer", "shards", *infer, "--shard", f"{i}/2") for i in range(2)])
    timed("--num-gpus 2 (2 ranks)", [_cli(env, "infer", "ranks", *infer, "--num-gpus", "2")])
    return rows


def _editor(uri: str, dataset: str, n: int, journal: str, start_at: float, part: str) -> None:
    """One editor process: ``n`` single-sample tag edits of its own samples (``part`` I/N: every
    N-th; editors on the same samples would measure conflicts), from ``start_at`` (a shared clock)."""
    from maskreview.core import store

    store.configure(database_uri=uri)
    from maskreview.core.editing.ops import SampleTags
    from maskreview.core.editing.session import EditSession

    ds = store.connect().load_dataset(dataset)
    index, count = map(int, part.split("/"))
    ids = ds.values("id")[index::count]
    session = EditSession(ds, journal_root=Path(journal))
    session.track(ids)
    while time.time() < start_at:
        time.sleep(0.005)
    begin = time.perf_counter()
    for i in range(n):
        session.apply(SampleTags((ids[i % len(ids)],), (f"{os.getpid()}-{i}",)))
    print(json.dumps({"seconds": time.perf_counter() - begin, "edits": n}))
    session.close()


def edits(root: Path, uri: str, label: str, n_edits: int) -> list[tuple]:
    env = _env(root, uri)
    scenes = root / "edit-scenes"
    if not scenes.exists():
        subprocess.run([sys.executable, "-m", "maskreview", "demo-data", "--out", str(scenes), "--n", "64", "--size",
                        "64"], cwd=REPO, env=env, check=True, capture_output=True)
    rows = []
    for editors in (1, 2):
        name = f"edits-{label.split()[0]}-{editors}"
        _done(_cli(env, "import", str(scenes / "annotations.json"), "--name", name))
        start_at = time.time() + 15  # every editor has loaded FiftyOne by then
        procs = [subprocess.Popen([sys.executable, __file__, "--editor", uri, name, str(n_edits),
                                   str(root / f"journal-{name}-{e}"), str(start_at), f"{e}/{editors}"], cwd=REPO, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for e in range(editors)]
        results = [json.loads(_done(p).strip().splitlines()[-1]) for p in procs]
        total = sum(r["edits"] for r in results) / max(r["seconds"] for r in results)
        rows.append((f"{label}, {editors} editor(s)", editors, total))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--edits", type=int, default=300)
    parser.add_argument("--editor", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.editor:
        uri, dataset, n, journal, start_at, part = args.editor
        _editor(uri, dataset, int(n), journal, float(start_at), part)
        return 0
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="bench-team-") as tmp:
        root = Path(tmp)
        standalone = Standalone(root / "standalone")
        rs = ReplicaSet(root / "rs", [_free_port() for _ in range(3)])
        try:
            rows = inference(root, standalone.uri, args.images)
            peer = rows[0][3]
            print(f"\ninference, demo model on CPU, {args.images} images of 256 px (wall time includes start-up)")
            benchkit.table(("command", "processes", "wall s", "samples/h", "loop img/s", "vs peer"),
                           [(*r, r[3] / peer) for r in rows])
            # on CPU one process already keeps every core busy: workers share them (GPUs and hosts add)
            benchkit.result("team_inference_2_shards_vs_1_on_2_cores", f"{rows[1][3] / peer:.2f}x",
                            ">= 0.8x (same cores shared)", rows[1][3] >= peer * 0.8)
            edit_rows = edits(root, standalone.uri, "standalone mongod (w:1, j)", args.edits)
            rs.start()
            edit_rows += edits(root, rs.uri, "replica set of 3 (w:majority, j)", args.edits)
            peer_edits = edit_rows[0][2]
            print(f"\nedits: single-sample tag edits through EditSession, {args.edits} per editor")
            benchkit.table(("database", "editors", "edits/s", "vs peer"), [(*r, r[2] / peer_edits) for r in edit_rows])
            benchkit.result("team_edits_per_s_replica_set", f"{edit_rows[2][2]:.0f}/s", "> 10/s (a reviewer's pace)",
                            edit_rows[2][2] > 10)
        finally:
            rs.stop()
            standalone.stop()
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
