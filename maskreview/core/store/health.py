"""Whether FiftyOne's database answers now (for a background probe while it is unreachable)."""

from __future__ import annotations

from maskreview.core.store import fiftyone
from maskreview.core.store.writer import unconfirmed


def database_answers() -> bool:
    """A ``ping`` to the database FiftyOne uses; False when it does not answer within its
    server-selection wait (:func:`maskreview.core.store.fiftyone` bounds it to seconds)."""
    fiftyone()
    import fiftyone.core.odm.database as fod

    try:
        fod.get_db_conn().command("ping")
    except Exception as exc:
        if unconfirmed(exc):
            return False
        raise
    return True
