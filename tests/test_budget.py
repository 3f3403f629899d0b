"""Vendor budgets over a minute or an hour: known before the vendor refuses, and learnt when it
refuses anyway. Step by step against the simulator (no worker), with the sweep's own claim."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from nanoweb.lib.ratelimit import HOUR
from nanoweb.providers.models import Attempt, Options
from nanoweb.studio import audit
from nanoweb.studio.jobs import pipeline, sweep
from nanoweb.studio.jobs.spec import JobSpec
from nanoweb.studio.models import Generation, Lease

Status = Generation.Status


@pytest.fixture
def nanophoto(make_account):
    """nanophoto first (priority 1) with its documented limit, 100 requests an hour."""
    account = make_account("nanophoto", name="nanophoto")
    account.priority = 1
    account.save()
    return account


def spend_budget(account, requests: int, minutes_ago: float = 30) -> None:
    """This many of the account's requests went out `minutes_ago` (as a sweep would hand them on)."""
    sent = [time.time() - minutes_ago * 60] * requests
    pipeline.limiter.restore({"sent": {str(account.pk): sent}, "horizon": {str(account.pk): HOUR}})


def start(owner, account=None) -> Generation:
    spec = JobSpec(prompt="a lighthouse", model_name="Nano Banana 2", options=Options(resolution="1K"),
                   account=account.pk if account else None)  # fmt: skip
    [job] = pipeline.start(owner=owner, spec=spec)
    return job


def requests_to(simulator, protocol: str, since: int) -> int:
    return sum(request.path.startswith(f"/{protocol}/") for request in list(simulator.requests)[since:])


def test_a_new_nanophoto_account_starts_with_the_vendors_hundred_requests_an_hour(nanophoto, make_account):
    assert (nanophoto.limits.per_hour, nanophoto.limits.per_second) == (100, 10.0)
    assert make_account("crun").limits.per_hour is None, "crun documents no hourly limit"


def test_an_automatic_job_moves_to_another_account_at_once_when_the_budget_is_spent(
    owner, nanophoto, make_account, simulator
):
    crun = make_account("crun", name="crun")
    spend_budget(nanophoto, 100)
    job = start(owner)
    assert job.account_id == nanophoto.pk
    seen = len(simulator.requests)

    sweep.claim_due("sweep", limit=10)

    job.refresh_from_db()
    assert (job.status, job.account_id) == (Status.QUEUED, crun.pk)
    assert job.waiting_reason == "nanophoto allows 100 requests an hour; trying another account"
    assert requests_to(simulator, "nanophoto", seen) == 0, "nothing was sent to be refused"
    assert not Attempt.objects.filter(generation=job, account=nanophoto).exists()
    claimed, _ = sweep.claim_due("sweep", limit=10)
    assert [claimed_job.pk for claimed_job, _ in claimed] == [job.pk], "and goes out on crun at once"


def test_a_pinned_job_waits_and_its_card_says_why_and_until_when(owner, owner_client, nanophoto, make_account):
    make_account("crun", name="crun")
    spend_budget(nanophoto, 100, minutes_ago=57)  # the oldest leaves the hour in three minutes
    job = start(owner, nanophoto)

    sweep.claim_due("sweep", limit=10)

    job.refresh_from_db()
    free = timezone.now() + timedelta(minutes=3)
    assert (job.status, job.account_id, job.attempts) == (Status.QUEUED, nanophoto.pk, 0)
    assert abs((job.due_at - free).total_seconds()) < 5
    at = timezone.localtime(job.due_at).strftime("%H:%M")
    card = owner_client.get(reverse("generation_card", args=[job.pk])).content.decode()
    assert f"nanophoto allows 100 requests an hour; next free at {at}" in card
    assert "attempt" not in card.split("next free at")[1][:40], "it has not tried yet"


def test_a_pinned_job_that_could_not_go_before_its_deadline_fails_refunded_at_once(owner, nanophoto, settings):
    settings.JOB_DEADLINE_SECONDS = 600
    spend_budget(nanophoto, 100, minutes_ago=20)
    job = start(owner, nanophoto)

    sweep.claim_due("sweep", limit=10)

    job.refresh_from_db()
    assert (job.status, job.error_kind) == (Status.FAILED, "rate_limited")
    at = timezone.localtime(timezone.now() + timedelta(minutes=40)).strftime("%H:%M")
    assert (
        job.error_detail
        == f"nanophoto allows 100 requests an hour; the next is free at {at}, after this job's deadline"
    )
    assert audit.ledger_problems() == []


def test_reads_on_a_spent_budget_wait_for_it_and_are_never_refused(owner, nanophoto, simulator):
    job = start(owner, nanophoto)
    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))
    job.refresh_from_db()
    spend_budget(nanophoto, 99, minutes_ago=20)  # with the create: 100
    Generation.objects.filter(pk=job.pk).update(due_at=timezone.now())
    seen = len(simulator.requests)

    assert sweep.claim_due("sweep", limit=10)[0] == []

    job.refresh_from_db()
    assert job.status == Status.SUBMITTED and requests_to(simulator, "nanophoto", seen) == 0
    assert 39 * 60 < (job.due_at - timezone.now()).total_seconds() <= 41 * 60


def test_a_create_waits_while_the_hour_keeps_a_read_for_each_job_out(owner, nanophoto):
    out = start(owner, nanophoto)
    pipeline.submit(Generation.objects.select_related("account").get(pk=out.pk))
    spend_budget(nanophoto, 95, minutes_ago=58)  # with the create: 96; four left: its read, two spare, one
    long_ago = timezone.now() - timedelta(seconds=40)  # so long that the schedule wants the read now
    Generation.objects.filter(pk=out.pk).update(due_at=timezone.now(), submitted_at=long_ago)
    waiting = start(owner, nanophoto)

    claimed, _ = sweep.claim_due("sweep", limit=10)

    assert [job.pk for job, _ in claimed] == [out.pk], "the read goes; a create would leave a job unread"
    waiting.refresh_from_db()
    assert waiting.status == Status.QUEUED and "allows 100 requests an hour; next free at" in waiting.waiting_line


def test_a_refusal_that_comes_anyway_teaches_the_limiter_and_fails_nothing(owner, make_account, simulator):
    # The vendor counts requests we do not know of (another client of the same key).
    account = make_account(
        "nanophoto", faults=f"+status_error=API_KEY_RATE_LIMIT_EXCEEDED+retry_after=40+n={id(owner)}"
    )
    job = start(owner, account)
    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))
    job.refresh_from_db()

    pipeline.follow(Generation.objects.select_related("account").get(pk=job.pk))

    job.refresh_from_db()
    assert job.status == Status.SUBMITTED and job.error_kind == ""
    assert 38 <= (job.due_at - timezone.now()).total_seconds() <= 41
    assert pipeline.limiter.room(str(account.pk), account.limits) == 0, "nothing goes to it for 40 s"
    assert pipeline.limiter.usage(str(account.pk)) == (2, 1)
    assert job.poll_count == 1, "the refused read counts: the vendor counted it"


def test_the_final_read_counts_as_a_status_read(owner, nanophoto, simulator):
    simulator.latency = 0.0
    job = start(owner, nanophoto)
    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))
    time.sleep(0.2)

    pipeline.follow(Generation.objects.select_related("account").get(pk=job.pk))

    job.refresh_from_db()
    read = simulator.jobs[job.provider_task_id].reads
    assert job.status == Status.FINISHING and job.poll_count == len(read) == 1


def test_the_health_page_shows_each_accounts_budget_use_over_the_last_hour(client, staff, nanophoto, make_account):
    crun = make_account("crun", name="crun")
    for _ in range(3):
        pipeline.limiter.acquire(str(nanophoto.pk), nanophoto.limits)
    pipeline.limiter.acquire(str(crun.pk), crun.limits)
    pipeline.limiter.refused(str(nanophoto.pk), nanophoto.limits, retry_after=5)
    Lease.objects.create(name=pipeline.SWEEP, holder="me", expires_at=timezone.now() + timedelta(seconds=5))
    sweep.note_limits("me")
    cache.clear()
    client.force_login(staff)

    page = client.get(reverse("provider_health") + "?window=day").content.decode()

    nanophoto_row = page.split(f'id="health-{nanophoto.pk}"')[1].split("</tr>")[0]
    crun_row = page.split(f'id="health-{crun.pk}"')[1].split("</tr>")[0]
    assert "3 of 100 (3 %)" in nanophoto_row and "1 refused (429)" in nanophoto_row
    assert crun_row.split('class="budget">')[1].split("</td>")[0].strip() == "1", "no hourly limit, none refused"
