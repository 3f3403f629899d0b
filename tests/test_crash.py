"""Nothing lost: kill -9 of the whole worker cluster with jobs in flight, then a restart."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

from nanoweb.studio import audit
from nanoweb.studio.models import GeneratedImage, Generation
from tests.conftest import start_job, wait_for


def test_jobs_survive_a_killed_worker_cluster(start_worker, owner, make_account, simulator):
    simulator.latency = 1.5
    crun, apiframe = make_account("crun"), make_account("apiframe")
    jobs = [
        start_job(owner, account, model, f"crash {n}")[0]
        for n in range(12)
        for account, model in ((crun, "google/nano-banana"), (apiframe, "nano-banana"))
    ]
    first = start_worker()
    wait_for(lambda: Generation.objects.filter(status__in=Generation.FOLLOWED).count() >= 6, timeout=20)
    time.sleep(0.3)

    os.killpg(first.pid, signal.SIGKILL)  # the cluster and every worker process, mid-flight
    first.wait()
    in_flight = Generation.objects.filter(status__in=Generation.ACTIVE).count()
    start_worker()

    def all_ended():
        return not Generation.objects.filter(status__in=Generation.ACTIVE).exists()

    wait_for(all_ended, timeout=60, interval=0.2)
    assert in_flight > 0, "the kill must catch jobs in flight for this test to mean anything"
    finished = Generation.objects.filter(pk__in=[job.pk for job in jobs])
    assert all(job.is_terminal for job in finished)
    succeeded = finished.filter(status="succeeded")
    assert succeeded.count() >= 12, [(j.account.kind, j.status, j.error_detail) for j in finished]
    images_per_job = Counter(GeneratedImage.objects.values_list("generation", flat=True))
    assert all(images_per_job[job.pk] == 1 for job in succeeded), "every image stored exactly once"
    assert audit.ledger_problems() == [], "each job charged or refunded exactly once"
    # apiframe dedupes by our Idempotency-Key: however often a create was sent, one job each.
    apiframe_keys = {str(job.uuid) for job in finished.filter(account=apiframe)}
    sent = [
        r.headers.get("idempotency-key") for r in list(simulator.requests) if r.path.endswith("/v2/images/generate")
    ]
    started = {simulator.idempotency[f"sim-key:{key}"].id for key in set(sent) if key in apiframe_keys}
    assert len(started) == finished.filter(account=apiframe).exclude(provider_task_id="").count()
