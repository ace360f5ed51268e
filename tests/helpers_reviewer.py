"""A reviewer in a process of its own, for the tests that kill databases (test_replica_set.py).

``python helpers_reviewer.py URI DATASET JOURNAL_DIR`` opens an :class:`EditSession` on the
dataset and reads one JSON command a line from stdin, answering with JSON lines on stdout:

- ``{"tag": [SAMPLE_ID, TAG], "wait": true}``: add a sample tag. On a conflict it says
  ``{"conflict": TAG, "samples": [...]}``, takes theirs and tries again (as the app's "No").
  With ``wait``, an edit queued while the database is unreachable is resumed until it is written;
  then ``{"ack": TAG}`` (acknowledged: the database confirmed it with the session's write
  concern). Without ``wait``: ``{"queued": TAG}`` when it waits in the journal, ``{"error": TAG}``
  when it cannot be made while the database is unreachable (with ``wait``: tried again).
- ``{"resume": true}``: ``{"resumed": REPORT or null, "offline": bool}``.
- ``{"quit": true}``: closes the session and exits.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def say(message: dict) -> None:
    print(json.dumps(message), flush=True)


def main() -> None:
    uri, name, journal_dir = sys.argv[1:4]
    from maskreview.core import store

    store.configure(database_uri=uri)
    from maskreview.core.editing.ops import SampleTags
    from maskreview.core.editing.session import ConflictError, EditSession
    from maskreview.core.errors import DatabaseError

    dataset = store.connect().load_dataset(name)
    session = EditSession(dataset, journal_root=Path(journal_dir))
    ids = dataset.values("id")
    session.track(ids)
    say({"ready": ids, "write_concern": session._writer._coll.write_concern.document})
    for line in sys.stdin:
        command = json.loads(line)
        if "quit" in command:
            break
        if "resume" in command:
            report = session.try_resume()
            say({"resumed": report, "offline": session.offline})
            continue
        sample_id, tag = command["tag"]
        deadline = time.monotonic() + 120
        while True:
            try:
                session.apply(SampleTags((sample_id,), (tag,)))
            except ConflictError as exc:
                say({"conflict": tag, "samples": exc.sample_ids})
                session.refresh(exc.sample_ids)
                continue
            except DatabaseError as exc:  # unreachable, and the sample not open (a conflict just reloaded it)
                if command.get("wait") and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                say({"error": tag, "message": str(exc)})
                break
            if not session.offline:
                say({"ack": tag})
                break
            if not command.get("wait"):
                say({"queued": tag, "waiting": session.queued_count})
                break
            while session.offline and time.monotonic() < deadline:  # the replica set electing a primary
                report = session.try_resume()
                if report is None:
                    time.sleep(0.2)
                elif report["conflicts"]:  # someone else's change won meanwhile: again on theirs
                    say({"conflict": tag, "samples": report["conflicts"], "after_resume": True})
                    break
            else:
                if session.offline:
                    say({"error": tag, "message": "the database did not come back"})
                    break
                say({"ack": tag, "resumed": True})
                break
    session.close()


if __name__ == "__main__":
    main()
