"""Finishing runs on any worker, once; a process holding a job keeps a lease on it, and a job
lost with its process is taken up again (finishing) or ended at once (a synchronous call)."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta

from django.core.files.storage import default_storage
from django.utils import timezone

from nanoweb.lib.ratelimit import RateLimiter
from nanoweb.providers.base import ResultImage
from nanoweb.studio import audit
from nanoweb.studio.jobs import finishing, pipeline, sweep
from nanoweb.studio.models import Generation, Lease
from tests.conftest import start_job, wait_for, wait_until_terminal
from tests.test_references import png

Status = Generation.Status


def test_finishing_runs_on_a_worker_while_another_process_holds_the_sweep(
    start_worker, owner, crun_account, simulator, settings, tmp_path
):
    """This test process runs the one sweep (status reads); the images are stored by the
    worker cluster, which has its own media folder: so they were stored there."""
    settings.SWEEP_SECONDS = 120  # no relay to a successor during the test
    token = "the-test-process-sweeps"
    Lease.objects.create(name=pipeline.SWEEP, holder=token, expires_at=timezone.now() + timedelta(seconds=30))
    jobs = [start_job(owner, crun_account, "google/nano-banana", f"elsewhere {n}")[0] for n in range(4)]
    sweeping = threading.Thread(target=sweep.sweep, args=(token,))
    sweeping.start()
    worker_media = tmp_path / "worker-media"
    start_worker(NANOWEB_MEDIA_ROOT=str(worker_media))

    for job in jobs:
        assert wait_until_terminal(job).status == Status.SUCCEEDED, job.error_detail
    sweeping.join(timeout=30)

    assert Lease.objects.get(name=pipeline.SWEEP).holder == token, "no other sweep ran"
    for job in jobs:
        image = wait_for(lambda job=job: job.images.exclude(display="").first())
        assert (worker_media / image.original.name).is_file() and (worker_media / image.thumbnail.name).is_file()
        assert not (tmp_path / "media" / image.original.name).exists(), "not stored by the sweeping process"
    assert audit.ledger_problems() == []


def test_a_lost_synchronous_call_ends_at_once_not_at_the_deadline(start_worker, owner, make_account, simulator):
    gemini = make_account("gemini")
    [job] = start_job(owner, gemini, "gemini-2.5-flash-image", "slow [sim:latency=60]")
    first = start_worker(HOLD_SECONDS="1")
    wait_for(lambda: Generation.objects.filter(pk=job.pk, status=Status.RUNNING).exists(), timeout=30)
    time.sleep(1.5)  # the lease was renewed at least once
    assert Generation.objects.get(pk=job.pk).due_at > timezone.now(), "the call's process renews its lease"

    os.killpg(first.pid, signal.SIGKILL)  # the process making the call, and its whole cluster
    first.wait()
    killed = time.monotonic()
    start_worker(HOLD_SECONDS="1")

    job = wait_until_terminal(job, timeout=60)
    assert time.monotonic() - killed < 30, "ended within seconds, not at the 600 s deadline"
    assert (job.status, job.error_kind) == (Status.FAILED, "internal")
    assert "stopped" in job.error_detail
    assert audit.ledger_problems() == [], "refunded"


def held_job(owner, account, status, **fields) -> Generation:
    """A job some process held, whose lease lapsed a second ago."""
    [job] = start_job(owner, account, account.adapter_class.default_models[0].id, "held")
    fields = {"claim": "a-dead-process", "due_at": timezone.now() - timedelta(seconds=1), **fields}
    Generation.objects.filter(pk=job.pk).update(status=status, **fields)
    job.refresh_from_db()
    return job


def test_the_sweep_ends_a_synchronous_call_whose_lease_lapsed_and_requeues_lost_finishing(owner, make_account):
    call = held_job(owner, make_account("gemini"), Status.RUNNING)
    lost = held_job(owner, make_account("crun"), Status.FINISHING, results=[{"url": "http://127.0.0.1:9/x.png"}])
    alive = held_job(owner, make_account("apiframe"), Status.FINISHING)
    Generation.objects.filter(pk=alive.pk).update(due_at=timezone.now() + timedelta(seconds=20))

    assert sweep.claim_due("sweep", limit=10)[0] == [], "held jobs are not provider requests"

    call.refresh_from_db()
    assert (call.status, call.error_kind) == (Status.FAILED, "internal") and audit.ledger_problems() == []
    lost.refresh_from_db()
    assert (lost.status, lost.claim) == (Status.FINISHING, "") and lost.due_at > timezone.now()
    alive.refresh_from_db()
    assert alive.claim == "a-dead-process", "a renewed lease is left alone"


def test_a_finishing_task_claims_its_job_once(owner, crun_account):
    kept = [finishing.keep(ResultImage(data=png(color="teal")))]
    job = held_job(owner, crun_account, Status.FINISHING, claim="someone-else", results=kept)

    finishing.finish(job.pk)  # another task holds it
    job.refresh_from_db()
    assert job.status == Status.FINISHING and not job.images.exists()

    Generation.objects.filter(pk=job.pk).update(claim="")
    finishing.finish(job.pk)
    finishing.finish(job.pk)  # redelivered
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.images.count() == 1
    assert not default_storage.exists(kept[0]["file"]), "the kept bytes are removed"
    assert audit.ledger_problems() == []


def test_a_short_budget_goes_to_the_job_most_likely_done(owner, make_account, monkeypatch):
    """Two reads due on an account with room for one: the job older than any the account
    ever ran is read; the one at its first, early read (few jobs are done by then) waits."""
    account = make_account("crun", name="busy")
    account.rate_limit = 2
    account.save()
    now = timezone.now()
    for seconds in (10, 15, 20, 25, 30):  # the account's history: 10 to 30 s
        Generation.objects.create(owner=owner, prompt="past", account=account, model="google/nano-banana",
                                  status=Status.SUCCEEDED, provider_seconds=seconds)  # fmt: skip
    fresh, ripe = (
        Generation.objects.create(
            owner=owner,
            prompt=name,
            account=account,
            model="google/nano-banana",
            status=Status.SUBMITTED,
            submitted_at=now - timedelta(seconds=age),
            due_at=now - timedelta(seconds=0.1),
        )  # fmt: skip
        for name, age in (("fresh", 14.5), ("ripe", 31))
    )
    pipeline._history.clear()
    monkeypatch.setattr(pipeline, "limiter", RateLimiter())  # this process's earlier requests aside
    pipeline.limiter.acquire(str(account.pk), account.limits)  # one of the two slots is taken

    claimed, _ = sweep.claim_due("sweep", limit=10)

    assert [job.pk for job, _ in claimed] == [ripe.pk]
    for _, permit in claimed:
        permit.release()
    fresh.refresh_from_db()
    assert fresh.claim == "" and fresh.due_at < timezone.now(), "still due, next time there is room"
