"""The job pipeline: submit, follow, download, store, finish.

No job holds a worker while the provider works. `submit` is one short task per job;
all following happens in one poll sweep at a time: a bounded task that holds a lease,
claims jobs whose next status read is due, reads their statuses concurrently over
pooled connections, and hands over to a successor before its time is up. Every state
change is a conditional update, so a task that runs twice, or two sweeps that overlap
after a lease lapsed, do no harm.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django_q.tasks import async_task

from nanoweb.credits import ledger, prices
from nanoweb.lib import http, images
from nanoweb.providers.base import (
    ErrorKind,
    GenerationRequest,
    ProviderError,
    ProviderStatus,
    ResultImage,
    State,
)
from nanoweb.studio.models import GeneratedImage, Generation, SweepLease

log = logging.getLogger(__name__)
Status = Generation.Status
SWEEP = "poll"
CLAIM_SECONDS = 60  # a claimed job is not polled by another sweep for this long
IDLE_TICK = 0.1  # how often an idle sweep looks for due jobs (callbacks set them due)


# --- starting and cancelling -----------------------------------------------------


def start(*, owner, prompt: str, account, model: str, **options) -> Generation:
    """Create the job, hold its price, and queue its submission: all of it, or nothing.

    Raises OverBudget (nothing is stored) when the owner or the team cannot afford it.
    """
    price = prices.price_for(account, model, options.get("resolution", ""))
    with transaction.atomic():
        generation = Generation.objects.create(
            owner=owner, prompt=prompt, account=account, model=model, price=price, **options
        )
        ledger.reserve(user=owner, generation=generation, amount=price)
        transaction.on_commit(lambda: async_task(submit, generation.pk, task_name=f"submit-{generation.pk}"))
    return generation


def cancel(generation: Generation) -> bool:
    """Stop following the job and refund it. A result that still arrives is discarded."""
    return generation.advance(
        Generation.ACTIVE,
        Status.CANCELED,
        error_message="Canceled: if the provider still finishes, the result is discarded.",
    )


# --- submitting -------------------------------------------------------------------


def uses_callbacks(generation: Generation) -> bool:
    return bool(settings.PUBLIC_BASE_URL) and generation.account.adapter_class.pushes_completion


def provider_request(generation: Generation) -> GenerationRequest:
    callback_url = ""
    if uses_callbacks(generation):
        path = reverse("provider_callback", args=[generation.callback_token])
        callback_url = settings.PUBLIC_BASE_URL + path
    return GenerationRequest(
        prompt=generation.prompt,
        model=generation.model,
        aspect_ratio=generation.aspect_ratio,
        resolution=generation.resolution,
        output_format=generation.output_format,
        google_search=generation.google_search,
        callback_url=callback_url,
        idempotency_key=str(generation.uuid),
    )


def submit(generation_id: int) -> None:
    generation = Generation.objects.select_related("account").get(pk=generation_id)
    if not generation.advance(Status.QUEUED, Status.SUBMITTING):
        return  # already submitted (a redelivered task) or cancelled
    now = timezone.now()
    if generation.account.adapter_class.synchronous:
        # The create call itself takes the whole generation: the sweep's threads make it,
        # so it holds neither this worker nor anyone else's.
        generation.advance(Status.SUBMITTING, Status.SUBMITTED, submitted_at=now, next_poll_at=now)
        wake_sweeper()
        return
    try:
        submitted = generation.account.adapter().create(provider_request(generation))
    except ProviderError as error:
        generation.fail(Status.SUBMITTING, error)
        return
    except Exception as exc:
        log.exception("submit of generation %s failed", generation_id)
        generation.fail(Status.SUBMITTING, ProviderError(ErrorKind.INTERNAL, repr(exc)))
        return
    generation.advance(
        Status.SUBMITTING,
        Status.SUBMITTED,
        provider_task_id=submitted.task_id,
        submitted_at=now,
        next_poll_at=now + timedelta(seconds=poll_interval(generation, 0)),
    )
    wake_sweeper()


# --- following --------------------------------------------------------------------


def poll_interval(generation: Generation, elapsed: float) -> float:
    """Read often while a result is likely, then back off for slow jobs."""
    adapter = generation.account.adapter_class
    first, slowest = adapter.callback_poll_interval if uses_callbacks(generation) else adapter.poll_interval
    if elapsed < 30:
        return first
    return slowest if elapsed < 120 else slowest * 3


def wake(generation: Generation) -> None:
    """Make the job due now (a provider callback said something changed)."""
    Generation.objects.filter(pk=generation.pk, status__in=Generation.FOLLOWED).update(next_poll_at=timezone.now())
    wake_sweeper()


def wake_sweeper() -> None:
    """Start a sweep unless one holds the lease. Safe to call from anywhere, often."""
    token = uuid.uuid4().hex
    now = timezone.now()
    SweepLease.objects.get_or_create(name=SWEEP, defaults={"expires_at": now})
    # The short lease covers the time until the task starts; the sweep then renews it.
    taken = SweepLease.objects.filter(name=SWEEP, expires_at__lte=now).update(
        holder=token, expires_at=now + timedelta(seconds=15)
    )
    if taken:
        async_task(sweep, token, task_name=f"sweep-{token[:8]}")


def _renew(token: str, seconds: float) -> bool:
    return bool(
        SweepLease.objects.filter(name=SWEEP, holder=token).update(
            expires_at=timezone.now() + timedelta(seconds=seconds)
        )
    )


_pool: ThreadPoolExecutor | None = None


def thread_pool() -> ThreadPoolExecutor:
    """One pool per worker process, kept between sweeps: a long synchronous call started by
    one sweep goes on while the next sweep runs, and no sweep waits for it to end."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(settings.SWEEP_CONCURRENCY, thread_name_prefix="sweep")
    return _pool


def pollable():
    """Jobs a sweep must come back to (a synchronous call in flight has no next poll)."""
    return Generation.objects.filter(status__in=Generation.FOLLOWED, next_poll_at__isnull=False)


def sweep(token: str) -> None:
    """Follow every job in flight for up to SWEEP_SECONDS, then hand over."""
    if not _renew(token, CLAIM_SECONDS):
        return
    stop_at = time.monotonic() + settings.SWEEP_SECONDS
    in_progress: set = set()
    while time.monotonic() < stop_at:
        if not _renew(token, CLAIM_SECONDS):
            log.warning("sweep %s lost its lease", token[:8])
            break
        free = settings.SWEEP_CONCURRENCY * 2 - len(in_progress)
        for generation in claim_due(limit=max(free, 0)):
            future = thread_pool().submit(follow_in_thread, generation.pk)
            in_progress.add(future)
            future.add_done_callback(in_progress.discard)
        if not in_progress and not pollable().exists():
            break
        time.sleep(IDLE_TICK)
    SweepLease.objects.filter(name=SWEEP, holder=token).update(expires_at=timezone.now())
    # After releasing: a job submitted meanwhile either saw the free lease or is seen here.
    if pollable().exists():
        wake_sweeper()


def claim_due(*, limit: int) -> list[Generation]:
    now = timezone.now()
    due = list(
        Generation.objects.filter(status__in=Generation.FOLLOWED, next_poll_at__lte=now)
        .order_by("next_poll_at")
        .values_list("pk", "next_poll_at")[:limit]
    )
    claimed = []
    for pk, due_at in due:
        if Generation.objects.filter(pk=pk, next_poll_at=due_at).update(
            next_poll_at=now + timedelta(seconds=CLAIM_SECONDS)
        ):
            claimed.append(pk)
    return list(Generation.objects.filter(pk__in=claimed).select_related("account"))


def follow_in_thread(generation_id: int) -> None:
    try:
        follow(Generation.objects.select_related("account").get(pk=generation_id))
    except Exception:
        log.exception("following generation %s failed", generation_id)
    finally:
        connection.close()


def follow(generation: Generation) -> None:
    """Read the job's status once and act on it."""
    now = timezone.now()
    elapsed = (now - (generation.submitted_at or generation.created_at)).total_seconds()
    if elapsed > settings.JOB_DEADLINE_SECONDS:
        generation.fail(Generation.FOLLOWED, ProviderError(ErrorKind.EXPIRED, f"no result after {elapsed:.0f} s"))
        return
    adapter = generation.account.adapter()
    try:
        if adapter.synchronous:
            status = create_synchronously(generation, adapter)
            if status is None:
                return
        else:
            status = adapter.status(generation.provider_task_id)
    except ProviderError as error:
        not_yet = error.kind == ErrorKind.NOT_FOUND and elapsed < adapter.not_found_grace
        if not (error.retryable or not_yet):
            generation.fail(Generation.FOLLOWED, error)
            return
        delay = max(error.retry_after or 0, poll_interval(generation, elapsed) * 2)
        # A synchronous job is RUNNING while its call is out: it goes back to SUBMITTED to be retried.
        Generation.objects.filter(pk=generation.pk, status__in=Generation.FOLLOWED).update(
            status=Status.SUBMITTED if adapter.synchronous else generation.status,
            next_poll_at=now + timedelta(seconds=delay),
            poll_count=generation.poll_count + 1,
        )
        return
    except Exception as exc:
        log.exception("status read of generation %s failed", generation.pk)
        generation.fail(Generation.FOLLOWED, ProviderError(ErrorKind.INTERNAL, repr(exc)))
        return
    if status.state in (State.SUCCEEDED, State.FAILED):
        finish(generation, status)
        return
    Generation.objects.filter(pk=generation.pk, status__in=Generation.FOLLOWED).update(
        status=Status.RUNNING if status.state == State.RUNNING else generation.status,
        progress=max(generation.progress, status.progress),
        poll_count=generation.poll_count + 1,
        next_poll_at=now + timedelta(seconds=poll_interval(generation, elapsed)),
    )


def create_synchronously(generation: Generation, adapter) -> ProviderStatus | None:
    """Make a synchronous API's one call. RUNNING with no next poll marks the call as out,
    so no other sweep makes it again; a crash mid-call is ended by the reconciler's deadline."""
    if not generation.advance(Status.SUBMITTED, Status.RUNNING, next_poll_at=None):
        return None
    submitted = adapter.create(provider_request(generation))
    if submitted.status is None:
        raise ProviderError(ErrorKind.MALFORMED, "a synchronous API answered without a result")
    return submitted.status


# --- finishing --------------------------------------------------------------------


def finish(generation: Generation, status: ProviderStatus) -> None:
    """Turn a final provider status into a final job state, storing the images first."""
    if status.state == State.FAILED:
        error = status.error or ProviderError(ErrorKind.GENERATION_FAILED, "no reason given")
        generation.fail(Generation.FOLLOWED, error)
        return
    try:
        if not status.images:
            raise ProviderError(ErrorKind.MALFORMED, "the provider reported success without an image")
        checked = [fetch_result(image) for image in status.images]
    except ProviderError as error:
        generation.fail(Generation.FOLLOWED, error)
        return
    stored = [store_image(generation, index, image) for index, image in enumerate(checked)]
    with transaction.atomic():
        done = generation.advance(
            Generation.FOLLOWED, Status.SUCCEEDED, progress=100, provider_cost=status.provider_cost
        )
        if done:
            GeneratedImage.objects.bulk_create(stored)
    if not done:  # someone else finished it first: keep only their files
        for image in stored:
            image.original.delete(save=False)
            image.thumbnail.delete(save=False)


def fetch_result(result: ResultImage) -> images.CheckedImage:
    """Download (URLs expire, so at once) and verify one result image."""
    try:
        data = result.data
        if result.url:
            data, _ = http.download(result.url)
        return images.check(data)
    except (http.OutboundError, images.InvalidImage) as exc:
        raise ProviderError(ErrorKind.BAD_RESULT, str(exc)) from exc


def store_image(generation: Generation, index: int, checked: images.CheckedImage) -> GeneratedImage:
    image = GeneratedImage(
        generation=generation,
        index=index,
        width=checked.width,
        height=checked.height,
        bytes=len(checked.data),
        sha256=checked.sha256,
        mime_type=checked.mime_type,
    )
    stem = f"{generation.uuid}-{index}"
    image.original.save(f"{stem}.{checked.extension}", ContentFile(checked.data), save=False)
    image.thumbnail.save(f"{stem}.webp", ContentFile(images.thumbnail(checked.data)), save=False)
    return image


# --- recovering -------------------------------------------------------------------


def reconcile() -> dict[str, int]:
    """Find jobs a crash left behind and move them on. Runs on a schedule."""
    now = timezone.now()
    counts = {"resubmitted": 0, "failed": 0, "expired": 0}
    # Queued but no submit task ran (the enqueue was lost with a dying process).
    for generation in Generation.objects.filter(status=Status.QUEUED, created_at__lt=now - timedelta(seconds=60)):
        async_task(submit, generation.pk, task_name=f"submit-{generation.pk}")
        counts["resubmitted"] += 1
    # Died between claiming and recording the provider's task id: we cannot know
    # whether the provider has it, so the job ends rather than risk a double charge.
    for generation in Generation.objects.filter(status=Status.SUBMITTING, created_at__lt=now - timedelta(minutes=5)):
        counts["failed"] += generation.fail(
            Status.SUBMITTING, ProviderError(ErrorKind.INTERNAL, "interrupted while submitting")
        )
    deadline = now - timedelta(seconds=settings.JOB_DEADLINE_SECONDS)
    for generation in Generation.objects.filter(status__in=Generation.FOLLOWED, submitted_at__lt=deadline):
        counts["expired"] += generation.fail(Generation.FOLLOWED, ProviderError(ErrorKind.EXPIRED, "no result in time"))
    if pollable().exists():
        wake_sweeper()
    return counts
