"""The two things maskreview needs of a FiftyOne App session that FiftyOne keeps private.

``Session.close()`` also prints FiftyOne's "wait for the App" notice within 2.5 s of the start
and unregisters plots; maskreview runs the App server itself (:mod:`maskreview.core.app_bridge`)
and only drops the session's connection to it.
"""

from __future__ import annotations


def connected(session) -> bool:
    """Whether the session's client still talks to its App server."""
    return bool(session._client._connected)


def disconnect(session) -> None:
    """Close the session's connection to the App server (the server keeps running)."""
    session._client.close()
