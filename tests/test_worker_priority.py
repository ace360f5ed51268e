"""The model worker runs niced from its first instruction on, so the window's thread wins a core."""

import os

from maskreview.core.model.worker_client import WORKER_NICE, WorkerClient, lower_priority, shared_client


def test_the_worker_is_niced_before_its_imports_and_never_raised():
    own = os.getpriority(os.PRIO_PROCESS, 0)
    client = WorkerClient(nice=WORKER_NICE)
    try:
        client.start()
        # set by the window's side at once, before the worker imported FiftyOne and torch
        assert os.getpriority(os.PRIO_PROCESS, client.pid) == max(own, WORKER_NICE)
        assert client.call("ping") == client.pid
        assert os.getpriority(os.PRIO_PROCESS, client.pid) == max(own, WORKER_NICE)  # not niced twice
        lower_priority(client.pid, WORKER_NICE - 5)  # asking for less never raises its priority
        assert os.getpriority(os.PRIO_PROCESS, client.pid) == max(own, WORKER_NICE)
    finally:
        client.close()


def test_the_windows_worker_is_niced():
    assert shared_client().nice == int(os.environ.get("MASKREVIEW_WORKER_NICE_LEVEL", WORKER_NICE)) >= 10
