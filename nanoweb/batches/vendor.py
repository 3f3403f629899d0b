"""A batch "cheaper, within a day": its jobs sent as the vendor's own batches (Gemini's Batch
API) at the vendor's batch price, then followed by the sweep like any job until the vendor's
batch ends (`GeminiAdapter.status` reads `<batch name>#<index>`)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
from itertools import groupby

from django.conf import settings
from django.utils import timezone

from nanoweb.batches.models import Batch, VendorBatch
from nanoweb.providers.base import ProviderError
from nanoweb.providers.models import Attempt
from nanoweb.studio.jobs import leases, pipeline
from nanoweb.studio.models import Generation

log = logging.getLogger(__name__)
Status = Generation.Status
# What one image may weigh in the vendor's answer (base64 PNG): a vendor batch holds at most
# MAX_BATCH_MB of them, so that its answer stays small enough to fetch and keep while stored.
IMAGE_MB = {"512": 1, "1K": 3, "2K": 8, "4K": 24, "": 3}
MAX_BATCH_MB = 100


def chunks(jobs: list[Generation]) -> list[list[Generation]]:
    """The jobs of one account and model, cut into vendor batches whose answers stay small."""
    out: list[list[Generation]] = []
    weight = MAX_BATCH_MB
    for job in jobs:
        mb = IMAGE_MB.get(job.resolution, 3)
        if weight + mb > MAX_BATCH_MB:
            out.append([])
            weight = 0
        out[-1].append(job)
        weight += mb
    return out


def send(batch_id: int) -> None:
    """The task after a cheaper batch is created: send its queued jobs, per account and model."""
    waiting = Generation.objects.filter(
        batch_item__batch_id=batch_id, status=Status.QUEUED, lane=Generation.VENDOR, due_at__isnull=True
    ).select_related("account")
    jobs = sorted(waiting, key=lambda job: (job.account_id, job.model, job.pk))
    for _, same in groupby(jobs, key=lambda job: (job.account_id, job.model)):
        for chunk in chunks(list(same)):
            send_chunk(batch_id, chunk)


SEND_GRACE = timedelta(minutes=2)  # the task a batch's creation enqueued normally sends it at once


def send_waiting() -> int:
    """The safety net, every few minutes: send the cheaper batches whose sending task was lost
    (a worker that died first). Sending is a conditional move per job: never twice."""
    late = Generation.objects.filter(
        lane=Generation.VENDOR, status=Status.QUEUED, due_at__isnull=True,
        created_at__lt=timezone.now() - SEND_GRACE,
    )  # fmt: skip
    batches = set(late.values_list("batch_item__batch_id", flat=True))
    for batch_id in batches:
        send(batch_id)
    return len(batches)


def send_chunk(batch_id: int, jobs: list[Generation]) -> None:
    account = jobs[0].account
    now = timezone.now()
    held = [job for job in jobs if job.advance(Status.QUEUED, Status.SUBMITTING, claim=leases.token(),
                                                due_at=now + timedelta(hours=1), attempts=1)]  # fmt: skip
    if not held:
        return
    adapter = pipeline.adapter_for(held[0], None)
    recorded = pipeline.record_attempts_as_sent(adapter, held)
    try:
        name = adapter.batch_create(
            held[0].model, [pipeline.provider_request(job) for job in held], f"nanoweb batch {batch_id}"
        )
    except ProviderError as error:
        log.warning("vendor batch of %s jobs at %s refused: %s", len(held), account.name, error)
        for job in held:  # nothing was made: each is refunded
            job.fail(Status.SUBMITTING, error, provider_said=True, claim="")
        return
    Attempt.objects.filter(pk__in=[attempt.pk for attempt in recorded]).update(
        outcome=Attempt.Outcome.ACCEPTED, ended_at=timezone.now()
    )
    VendorBatch.objects.create(batch_id=batch_id, account=account, name=name)
    first_read = now + timedelta(seconds=settings.VENDOR_BATCH_POLL_SECONDS)
    for index, job in enumerate(held):
        job.advance(
            Status.SUBMITTING, Status.SUBMITTED, provider_task_id=f"{name}#{index}", submitted_at=now, claim="",
            due_at=first_read,
        )  # fmt: skip
    pipeline.wake_sweeper()


def cancel(batch: Batch) -> None:
    """Ask the vendor to stop this batch's vendor batches (what it already made is lost either way)."""
    by_account: dict[int, list[VendorBatch]] = defaultdict(list)
    for sent in batch.vendor_batches.select_related("account"):
        by_account[sent.account_id].append(sent)
    for sent_list in by_account.values():
        adapter = sent_list[0].account.adapter()
        for sent in sent_list:
            try:
                adapter.batch_cancel(sent.name)
            except ProviderError as error:
                log.warning("vendor batch %s not cancelled: %s", sent.name, error)
