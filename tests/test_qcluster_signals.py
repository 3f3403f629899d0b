"""`manage.py qcluster` stops within seconds when a signal reaches its whole process group
(Ctrl-C in a terminal, a process manager stopping the group), even with a job in flight."""

from __future__ import annotations

import os
import signal
import time

import pytest

from nanoweb.studio import health
from nanoweb.studio.models import Generation
from tests.conftest import start_job, wait_for


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_whole_group_stops_the_cluster_within_seconds(
    start_worker, owner, crun_account, simulator, signum
):
    simulator.latency = 30.0  # the job is still in flight when the signal comes
    cluster = start_worker()
    wait_for(lambda: health.workers()["workers"] == 2, timeout=30)
    [job] = start_job(owner, crun_account, "google/nano-banana", "in flight")
    wait_for(lambda: Generation.objects.filter(pk=job.pk, status__in=Generation.FOLLOWED).exists(), timeout=20)

    signalled = time.monotonic()
    os.killpg(cluster.pid, signum)
    cluster.wait(timeout=20)
    wait_for(lambda: group_gone(cluster.pid), timeout=5)
    stopped = time.monotonic() - signalled
    assert stopped < 10, f"the cluster and all its processes stopped within seconds, not {stopped:.1f}"
    job.refresh_from_db()
    assert not job.is_terminal, "the job is left to resume, as after a crash"
