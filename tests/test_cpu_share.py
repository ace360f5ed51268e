"""CPU model runs on one machine share its cores (``core/model/cpu_share``): two ``--shard`` runs
started together on the CPU each used every core, and together predicted 0.56x one process's
images per hour (bench_team, quiet 2-core machine)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import psutil
import pytest
import torch

from maskreview.core.model.cpu_share import CoreShare


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _other_run(folder) -> subprocess.Popen:
    """Another CPU run: a process of its own holding its entry until it is killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from maskreview.core.model.cpu_share import CoreShare
        with CoreShare({str(folder)!r}, cores=2):
            print("running", flush=True)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "running"
    return proc


def test_a_second_run_halves_the_threads_and_its_end_gives_them_back(tmp_path, torch_threads):
    with CoreShare(tmp_path, cores=2, every_s=0) as share:
        assert share.rebalance() == 2
        other = _other_run(tmp_path)
        try:
            assert share.live_runs() == 2
            assert share.rebalance() == 1 and torch.get_num_threads() == 1
        finally:
            other.kill()  # no clean exit: its entry stays behind
            other.wait()
        assert share.rebalance() == 2 and torch.get_num_threads() == 2
        assert len(list(tmp_path.iterdir())) == 1  # the dead run's entry was removed
    assert not list(tmp_path.iterdir())


def test_reused_pids_and_other_machines_entries_are_not_counted(tmp_path, torch_threads):
    host = socket.gethostname().replace("-", "_")
    parent = psutil.Process().parent()
    reused = tmp_path / f"{host}-{parent.pid}"
    reused.write_text(repr(parent.create_time() - 100.0))  # that pid belonged to an earlier process
    elsewhere = tmp_path / f"another_host-{parent.pid}"
    elsewhere.write_text(repr(parent.create_time()))
    (tmp_path / f"{host}-being_written").write_text("")
    with CoreShare(tmp_path, cores=4, every_s=0) as share:
        assert share.live_runs() == 1
        assert share.threads_for(3) == 1 and share.threads_for(2) == 2
    assert not reused.exists() and elsewhere.exists()


def test_the_share_is_looked_at_once_a_second_at_most(tmp_path, torch_threads):
    with CoreShare(tmp_path, cores=2, every_s=60) as share:
        other = _other_run(tmp_path)
        try:
            assert share.rebalance() == 2  # not looked at again yet
            assert share.rebalance(force=True) == 1
        finally:
            other.kill()
            other.wait()


def test_a_fixed_thread_count_takes_no_share(tmp_path, torch_threads):
    """``infer --threads N``: N threads whatever else runs, and no entry (the others keep theirs):
    the labels then match a run at the same N to the bit."""
    with CoreShare(tmp_path, cores=2, every_s=0, fixed=1) as fixed:
        assert torch.get_num_threads() == 1 and not list(tmp_path.iterdir())
        with CoreShare(tmp_path, cores=2, every_s=0) as shared:
            assert shared.rebalance() == 2  # alone: the fixed run is not counted
        assert fixed.rebalance(force=True) == 1
