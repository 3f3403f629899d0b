"""The job pipeline: submit, follow, download, store, finish.

No job holds a worker while the provider works. One poll sweep at a time (a bounded
django-q task holding a lease in the database) claims the jobs that are due (new ones to
submit, running ones whose next status read has come), works on them concurrently in a
thread pool over pooled connections, and hands over to a successor before its time is up.

Because every provider request of the team goes through the one sweep, a per-account
rate limit holds across all worker processes. Every state change is a conditional update,
so work done twice (a redelivered task, a sweep that outlived its lease) does no harm.
"""

from __future__ import annotations

import logging
import random
import statistics
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django_q.tasks import async_task

from nanoweb.credits import ledger
from nanoweb.lib import http, images
from nanoweb.lib.ratelimit import RateLimiter
from nanoweb.providers import routing
from nanoweb.providers.base import (
    Adapter,
    ErrorKind,
    GenerationRequest,
    ProviderError,
    ProviderStatus,
    ResultImage,
    State,
)
from nanoweb.providers.models import Attempt
from nanoweb.studio import references
from nanoweb.studio.models import GeneratedImage, Generation, SweepLease
from nanoweb.studio.spec import JobSpec

log = logging.getLogger(__name__)
Status = Generation.Status
SWEEP = "poll"
LEASE_SECONDS = 5.0  # renewed every tick; a dead sweep's work is taken over after this
IDLE_TICK = 0.05  # how often a sweep with nothing to do looks for due jobs
IMAGE_SLOTS = threading.BoundedSemaphore(2)  # full-size decodes at once per process (memory)
limiter = RateLimiter()


# --- starting, cancelling, waking ------------------------------------------------


class NoAccount(Exception):
    """No enabled account can serve what was asked (any more): nothing was stored."""


def start(*, owner: Any, spec: JobSpec) -> list[Generation]:
    """Create the job (or `spec.count` variations of it, as one group) on the first account
    routing offers, hold that account's price, store the references once, and have the sweep
    submit them: all of it, or nothing. Raises NoAccount, or OverBudget when the owner or the
    team cannot afford them (nothing is stored)."""
    rows = routing.candidates(spec.need)
    if not rows:
        raise NoAccount(f"No available account serves {spec.model} with these options any more: choose again.")
    row = rows[0]
    options = replace(spec.options, resolution=spec.options.resolution or row.default_resolution)
    price = row.price(options.resolution)
    group = uuid.uuid4() if spec.count > 1 else None
    written: list[str] = []
    try:
        with transaction.atomic():
            jobs = []
            for _ in range(spec.count):
                generation = Generation.objects.create(
                    owner=owner,
                    prompt=spec.prompt,
                    account=row.account,
                    model=row.model_id,
                    model_name=row.name,
                    automatic=spec.account is None,
                    aspect_ratio=options.aspect_ratio,
                    resolution=options.resolution,
                    output_format=options.output_format,
                    google_search=options.google_search,
                    price=price,
                    group=group,
                    next_poll_at=timezone.now(),
                )
                ledger.reserve(user=owner, generation=generation, amount=price)
                jobs.append(generation)
            refs = references.store(
                owner, uploads=list(spec.reference_files), results=list(spec.reference_results), written=written
            )
            for generation in jobs:
                references.link(generation, refs)
            transaction.on_commit(wake_sweeper)
    except BaseException:
        for name in written:  # the rows went with the transaction; their files go too
            default_storage.delete(name)
        raise
    return jobs


def cancel(generation: Generation) -> bool:
    """Stop following the job and refund it. A result that still arrives is discarded."""
    return generation.advance(
        Generation.ACTIVE,
        Status.CANCELED,
        error_message="Canceled: if the provider still finishes, the result is discarded.",
    )


def wake(generation: Generation) -> None:
    """Make the job due now (a provider callback said something changed)."""
    Generation.objects.filter(pk=generation.pk, status__in=Generation.FOLLOWED, next_poll_at__isnull=False).update(
        next_poll_at=timezone.now()
    )
    wake_sweeper()


def wake_sweeper() -> None:
    """Start a sweep unless one holds the lease. Safe to call from anywhere, often."""
    now = timezone.now()
    if SweepLease.objects.filter(name=SWEEP, expires_at__gt=now).exists():
        return  # a sweep is at work; it sees new due jobs on its next tick
    token = uuid.uuid4().hex
    SweepLease.objects.get_or_create(name=SWEEP, defaults={"expires_at": now})
    # The longer first lease covers the time until the task starts; the sweep then renews it.
    taken = SweepLease.objects.filter(name=SWEEP, expires_at__lte=now).update(
        holder=token, expires_at=now + timedelta(seconds=15)
    )
    if taken:
        async_task(sweep, token, task_name=f"sweep-{token[:8]}")


# --- the sweep ----------------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None


def thread_pool() -> ThreadPoolExecutor:
    """One pool per worker process, kept between sweeps, so that a long synchronous call
    started by one sweep goes on while the next sweep runs."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(settings.SWEEP_CONCURRENCY, thread_name_prefix="sweep")
    return _pool


def pollable():
    """Jobs a sweep must come back to (a synchronous call in flight has no next poll)."""
    return Generation.objects.filter(status__in=Generation.DUE_STATES, next_poll_at__isnull=False)


def work_left() -> bool:
    """Something a sweep must do: due jobs, or submits a dead sweep left half done."""
    return pollable().exists() or Generation.objects.filter(status=Status.SUBMITTING).exists()


def _renew(token: str) -> bool:
    expires = timezone.now() + timedelta(seconds=LEASE_SECONDS)
    return bool(SweepLease.objects.filter(name=SWEEP, holder=token).update(expires_at=expires))


def sweep(token: str) -> None:
    """Work on every due job for up to SWEEP_SECONDS, then hand over."""
    if not _renew(token):
        return
    lease = SweepLease.objects.get(name=SWEEP)
    limiter.restore(lease.limiter_state)
    recover_interrupted_submits(token)
    stop_at = time.monotonic() + settings.SWEEP_SECONDS
    running: set[Future] = set()  # futures the hand-over waits for
    calls: set[Future] = set()  # synchronous provider calls: minutes long, not waited for
    while time.monotonic() < stop_at:
        if not _renew(token):
            log.warning("sweep %s lost its lease", token[:8])
            break
        room = settings.SWEEP_CONCURRENCY * 2 - len(running) - len(calls)
        claimed = claim_due(token, limit=room) if room > 0 else []
        for generation in claimed:
            future = thread_pool().submit(step_in_thread, generation.pk, token)
            long_call = generation.status == Status.QUEUED and generation.account.adapter_class.synchronous
            (calls if long_call else running).add(future)
            future.add_done_callback((calls if long_call else running).discard)
        if claimed:
            continue
        busy = running | calls
        if busy:
            wait(busy, timeout=IDLE_TICK, return_when=FIRST_COMPLETED)  # a finished step may free room
        elif pollable().exists():
            time.sleep(IDLE_TICK)
        else:
            break  # nothing in flight: the next submit or callback wakes a new sweep
    # Finish what this sweep claimed before the lease goes to a successor.
    wait(running, timeout=settings.OUTBOUND_TIMEOUT + 10)
    SweepLease.objects.filter(name=SWEEP, holder=token).update(
        expires_at=timezone.now(), limiter_state=limiter.snapshot()
    )
    # After releasing: a job submitted meanwhile either saw the free lease or is seen here.
    if pollable().exists():
        wake_sweeper()


def recover_interrupted_submits(token: str) -> None:
    """A job left SUBMITTING under another sweep's claim was cut off by a crash: a sweep
    hands over only after its claimed work is done. Where the provider dedupes by our
    idempotency key it is submitted again; elsewhere we cannot know whether the provider
    started it, so it ends and is refunded rather than risk paying twice."""
    cut = Generation.objects.filter(status=Status.SUBMITTING).exclude(claim=token).select_related("account")
    for generation in cut:
        attempt = generation.attempt_log.filter(outcome=Attempt.Outcome.SENDING).last()
        if generation.account.adapter_class.idempotent:
            if generation.advance(Status.SUBMITTING, Status.QUEUED, claim="", next_poll_at=timezone.now()):
                end_attempt(attempt, Attempt.Outcome.RETRIED, ErrorKind.INTERNAL, "interrupted while sending")
        else:
            error = ProviderError(
                ErrorKind.INTERNAL,
                "interrupted while submitting; not sent again: the provider may have started the job",
            )
            generation.fail(Status.SUBMITTING, error)


def claim_due(token: str, *, limit: int) -> list[Generation]:
    """Claim due jobs for this sweep. A claim by another token is stale: only one sweep
    holds the lease, and a sweep hands over only after its claimed work is done."""
    now = timezone.now()
    due = Generation.objects.filter(status__in=Generation.DUE_STATES, next_poll_at__lte=now).exclude(claim=token)
    pks = list(due.order_by("next_poll_at").values_list("pk", flat=True)[:limit])
    if not pks:
        return []
    due.filter(pk__in=pks).update(claim=token)
    return list(Generation.objects.filter(pk__in=pks, claim=token).select_related("account"))


def step(generation: Generation) -> None:
    """One piece of work on a claimed job: submit it, or read its status."""
    if generation.status == Status.QUEUED:
        submit(generation)
    elif generation.status in Generation.FOLLOWED:
        follow(generation)


def step_in_thread(generation_id: int, token: str) -> None:
    try:
        step(Generation.objects.select_related("account").get(pk=generation_id))
    except Exception as exc:
        log.exception("generation %s failed in the sweep", generation_id)
        Generation.objects.get(pk=generation_id).fail(Generation.ACTIVE, ProviderError(ErrorKind.INTERNAL, repr(exc)))
    finally:
        connection.close()


def reschedule(generation: Generation, delay: float, *, status: str | None = None, **fields: Any) -> None:
    """Come back to this job after `delay` seconds (and release this sweep's claim), moving
    it to `status` on the way if given."""
    generation.advance(
        generation.status,
        status or generation.status,
        next_poll_at=timezone.now() + timedelta(seconds=delay),
        claim="",
        **fields,
    )


# --- submitting -------------------------------------------------------------------


def uses_callbacks(generation: Generation) -> bool:
    return bool(settings.PUBLIC_BASE_URL) and generation.account.adapter_class.pushes_completion


def provider_request(generation: Generation) -> GenerationRequest:
    callback_url = ""
    if uses_callbacks(generation):
        path = reverse("provider_callback", args=[generation.callback_token])
        callback_url = settings.PUBLIC_BASE_URL + path
    refs = references.ordered(generation)
    inline = generation.account.adapter_class.inline_references
    row = generation.catalogue_row()
    options = row.request_options(generation.options) if row else generation.options
    return GenerationRequest(
        prompt=generation.prompt,
        model=generation.model,
        aspect_ratio=options.aspect_ratio,
        resolution=options.resolution,
        output_format=options.output_format,
        google_search=options.google_search,
        reference_urls=() if inline else tuple(references.signed_url(ref) for ref in refs),
        reference_images=tuple((ref.read(), ref.mime_type) for ref in refs) if inline else (),
        callback_url=callback_url,
        idempotency_key=str(generation.uuid),
    )


def adapter_for(generation: Generation) -> Adapter:
    adapter = generation.account.adapter()

    def wait_for_the_rate_limit() -> None:
        limiter.acquire(str(generation.account_id), generation.account.rate_limit)

    adapter.before_request = wait_for_the_rate_limit
    return adapter


def submit(generation: Generation) -> None:
    """Send the job to the provider, recording the attempt. A synchronous API answers with
    the image itself."""
    if expired(generation):
        return
    account = generation.account
    if account.paused and fail_over(generation, Status.QUEUED, f"{account.name} is paused; trying another account"):
        return  # it would refuse: the job moves on without asking it again (else it answers for itself)
    if not generation.advance(Status.QUEUED, Status.SUBMITTING, attempts=generation.attempts + 1, waiting_reason=""):
        return  # cancelled meanwhile
    attempt = Attempt.objects.create(generation=generation, account=generation.account, model_id=generation.model)
    adapter = adapter_for(generation)
    now = timezone.now()
    if adapter.synchronous:
        # RUNNING with no next poll marks the call as out: no sweep makes it again, and
        # a crash mid-call is ended by the reconciler's deadline.
        generation.advance(Status.SUBMITTING, Status.RUNNING, submitted_at=now, next_poll_at=None)
    try:
        submitted = adapter.create(provider_request(generation))
    except ProviderError as error:
        after_refusal(generation, adapter, attempt, error)
        return
    end_attempt(attempt, Attempt.Outcome.ACCEPTED)
    if adapter.synchronous:
        finish(generation, submitted.status or ProviderStatus(State.FAILED))
        return
    generation.advance(
        Status.SUBMITTING,
        Status.SUBMITTED,
        provider_task_id=submitted.task_id,
        submitted_at=now,
        claim="",
        next_poll_at=now + timedelta(seconds=poll_interval(generation, 0.0)),
    )


def end_attempt(attempt: Attempt | None, outcome: str, kind: str = "", message: str = "") -> None:
    if attempt is not None:
        Attempt.objects.filter(pk=attempt.pk).update(
            outcome=outcome, error_kind=kind, message=message, ended_at=timezone.now()
        )


# Create refusals that say "not here, not now" although the job is fine: another account may
# take it at once. (Rate limits count only without a near Retry-After: NEAR_RETRY_SECONDS.)
MOVE_ON = {
    ErrorKind.AUTH, ErrorKind.OUT_OF_CREDIT, ErrorKind.UNKNOWN_MODEL, ErrorKind.BLOCKED_ADDRESS,
    ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE,
}  # fmt: skip
PAUSE = {ErrorKind.AUTH, ErrorKind.OUT_OF_CREDIT}  # until staff resume the account
NEAR_RETRY_SECONDS = 10.0


def after_refusal(generation: Generation, adapter: Adapter, attempt: Attempt, error: ProviderError) -> None:
    """A create failed. Move the job to another account if this one clearly refused it; try
    again here later if it may work soon; otherwise fail the job with the provider's words.

    A create that may have started a job at the provider (a timeout, a 500 after sending) is
    never sent again, here or elsewhere, unless the provider dedupes by our idempotency key:
    the team never pays twice.
    """
    current = Status.RUNNING if adapter.synchronous else Status.SUBMITTING
    account = generation.account
    if error.kind == ErrorKind.NOT_FOUND:  # at create: the model id, not a job
        error = ProviderError(ErrorKind.UNKNOWN_MODEL, error.detail)
    if error.kind in PAUSE:
        account.pause(f"{error.message} ({error.detail[:200]})")
    if error.ambiguous and not adapter.idempotent:
        end_attempt(attempt, Attempt.Outcome.FAILED, error.kind, error.detail)
        error.detail += " (not sent again: the provider may have started the job, and it cannot dedupe a repeat)"
        generation.fail(current, error, provider_said=True)
        return
    why = waiting_reason(account.name, error)
    near = error.retry_after is not None and error.retry_after <= NEAR_RETRY_SECONDS
    refused = error.kind in MOVE_ON and not (error.kind == ErrorKind.RATE_LIMITED and near) and not error.ambiguous
    if refused and fail_over(generation, current, f"{why}; trying another account"):
        end_attempt(attempt, Attempt.Outcome.MOVED, error.kind, error.detail)
        return
    delay = max(error.retry_after or 0.0, backoff(generation.attempts))
    if error.retryable and error.kind not in PAUSE and within_retry_window(generation, delay):
        end_attempt(attempt, Attempt.Outcome.RETRIED, error.kind, error.detail)
        moved = generation.advance(
            current, Status.QUEUED, claim="", next_poll_at=timezone.now() + timedelta(seconds=delay), waiting_reason=why
        )
        if moved:
            log.info("generation %s: %s, submitting again in %.1f s", generation.pk, error, delay)
        return
    end_attempt(attempt, Attempt.Outcome.FAILED, error.kind, error.detail)
    generation.fail(current, error, provider_said=True)


def waiting_reason(account: str, error: ProviderError) -> str:
    """Why a job waits, in a member's words."""
    return {
        ErrorKind.RATE_LIMITED: f"{account} is rate-limiting us",
        ErrorKind.UNAVAILABLE: f"{account} is unavailable",
        ErrorKind.AUTH: f"{account} refused our API key",
        ErrorKind.OUT_OF_CREDIT: f"{account} is out of credit",
        ErrorKind.UNKNOWN_MODEL: f"{account} no longer offers this model",
        ErrorKind.BLOCKED_ADDRESS: f"{account}'s address is blocked",
    }.get(error.kind, f"{account} failed")


def within_retry_window(generation: Generation, delay: float) -> bool:
    """Another create may still be made: fewer than CREATE_RETRY_ATTEMPTS so far, and the
    next one within CREATE_RETRY_SECONDS of the job's creation."""
    next_try = timezone.now() + timedelta(seconds=delay)
    window_ends = generation.created_at + timedelta(seconds=settings.CREATE_RETRY_SECONDS)
    return generation.attempts < settings.CREATE_RETRY_ATTEMPTS and next_try <= window_ends


def fail_over(generation: Generation, current: str, why: str) -> bool:
    """Send the job back to the queue on the next account that serves its model, held at
    that account's price: a dearer one only within the budget (else the next is tried).
    False when no account is left (or the job is pinned to its account)."""
    if not generation.automatic or not within_retry_window(generation, 0.0):
        return False
    tried = set(generation.attempt_log.values_list("account_id", flat=True))
    for row in routing.candidates(generation.need(), exclude=tried):
        price = row.price(generation.resolution)
        try:
            with transaction.atomic():
                ledger.reprice(generation, price, reason=f"moved from {generation.account} to {row.account}")
                moved = generation.advance(
                    current, Status.QUEUED, account=row.account, model=row.model_id, price=price,
                    claim="", next_poll_at=timezone.now(), waiting_reason=why,
                )  # fmt: skip
                if not moved:
                    raise Moved
        except ledger.OverBudget:
            continue
        except Moved:
            pass  # cancelled or moved meanwhile: nothing to do
        return True
    return False


class Moved(Exception):
    """The job was no longer where the failover expected it (rolls the repricing back)."""


def backoff(attempt: int) -> float:
    """Exponential, capped at a minute, with jitter so that retries do not arrive together."""
    return min(60.0, 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def expired(generation: Generation) -> bool:
    """End a job that ran past its deadline (counted from creation). True if it was ended."""
    age = (timezone.now() - generation.created_at).total_seconds()
    if age <= settings.JOB_DEADLINE_SECONDS:
        return False
    generation.fail(Generation.ACTIVE, ProviderError(ErrorKind.EXPIRED, f"no result after {age:.0f} s"))
    return True


# --- following --------------------------------------------------------------------

_expected: dict[int, tuple[float, float]] = {}  # account → (seconds a job typically takes, when measured)


def expected_seconds(generation: Generation) -> float:
    """How long this account's jobs have recently taken (median of the last 20); 0 before any,
    so that a new account is polled from the first second."""
    account = generation.account_id
    known = _expected.get(account)
    if known and time.monotonic() - known[1] < 30:
        return known[0]
    recent = (
        Generation.objects.filter(account_id=account, status=Status.SUCCEEDED, submitted_at__isnull=False)
        .order_by("-finished_at")
        .values_list("submitted_at", "finished_at")[:20]
    )
    durations = [(end - begin).total_seconds() for begin, end in recent if begin and end]
    value = statistics.median(durations) if durations else 0.0
    _expected[account] = (value, time.monotonic())
    return value


def poll_interval(generation: Generation, elapsed: float) -> float:
    """When to read the status next. Little before the job could be done, every second
    around when it usually is, rarer for slow jobs, and rarely at all when the provider
    calls back (polling is then only the safety net for a lost callback)."""
    typical = expected_seconds(generation)
    if uses_callbacks(generation):
        return max(10.0, typical * 2)
    first, slowest = generation.account.adapter_class.poll_interval
    if elapsed < typical * 0.7:
        return max(first, typical * 0.7 - elapsed)
    if elapsed < max(typical * 3, 30):
        return first
    return slowest if elapsed < 120 else slowest * 3


def follow(generation: Generation) -> None:
    """Read the job's status once and act on it."""
    if expired(generation):
        return
    adapter = adapter_for(generation)
    elapsed = (timezone.now() - (generation.submitted_at or generation.created_at)).total_seconds()
    try:
        status = adapter.status(generation.provider_task_id)
    except ProviderError as error:
        not_yet = error.kind == ErrorKind.NOT_FOUND and elapsed < adapter.not_found_grace
        if not (error.retryable or not_yet):
            generation.fail(Generation.FOLLOWED, error, provider_said=True)
            return
        delay = max(error.retry_after or 0, backoff(generation.poll_errors + 1), poll_interval(generation, elapsed))
        reschedule(generation, delay, poll_count=F("poll_count") + 1, poll_errors=F("poll_errors") + 1)
        return
    if status.state in (State.SUCCEEDED, State.FAILED):
        finish(generation, status)
        return
    reschedule(
        generation,
        poll_interval(generation, elapsed),
        status=Status.RUNNING if status.state == State.RUNNING else generation.status,
        progress=max(generation.progress, status.progress),
        poll_count=F("poll_count") + 1,
    )


# --- finishing --------------------------------------------------------------------


def finish(generation: Generation, status: ProviderStatus) -> None:
    """Turn a final provider status into a final job state, storing the images first."""
    if status.state == State.FAILED:
        error = status.error or ProviderError(ErrorKind.GENERATION_FAILED, "no reason given")
        if status.provider_cost:
            Generation.objects.filter(pk=generation.pk).update(provider_cost=status.provider_cost)
            generation.provider_cost = status.provider_cost
        generation.fail(Generation.ACTIVE, error, provider_said=True)
        return
    try:
        if not status.images:
            raise ProviderError(ErrorKind.MALFORMED, "the provider reported success without an image")
        stored = [store_image(generation, index, fetch_result(image)) for index, image in enumerate(status.images)]
    except ProviderError as error:
        generation.fail(Generation.ACTIVE, error)
        return
    with transaction.atomic():
        done = generation.advance(
            Generation.FOLLOWED, Status.SUCCEEDED, progress=100, provider_cost=status.provider_cost
        )
        if done:
            GeneratedImage.objects.bulk_create(stored)
    if not done:  # cancelled meanwhile, or someone else finished it first: keep only their files
        for image in stored:
            for stored_file in image.files:
                stored_file.delete(save=False)


def fetch_result(result: ResultImage) -> bytes:
    """Download at once (result URLs expire)."""
    if not result.url:
        return result.data
    try:
        return http.download(result.url)[0]
    except http.OutboundError as exc:
        raise ProviderError(ErrorKind.BAD_RESULT, str(exc)) from exc


def store_image(generation: Generation, index: int, data: bytes) -> GeneratedImage:
    """Verify the bytes with Pillow, make the renditions, and write them all (unsaved row)."""
    with IMAGE_SLOTS:
        try:
            prepared = images.prepare(data)
        except images.InvalidImage as exc:
            raise ProviderError(ErrorKind.BAD_RESULT, str(exc)) from exc
    image = GeneratedImage(
        generation=generation,
        index=index,
        width=prepared.width,
        height=prepared.height,
        bytes=len(data),
        sha256=prepared.sha256,
        mime_type=prepared.mime_type,
    )
    image.store(prepared, stem=f"{generation.uuid}-{index}")
    return image


# --- recovering -------------------------------------------------------------------


def reconcile() -> dict[str, int]:
    """The safety net, every minute: end jobs past their deadline (a synchronous call lost
    with its process ends here), and make sure a sweep runs while anything is due."""
    deadline = timezone.now() - timedelta(seconds=settings.JOB_DEADLINE_SECONDS)
    expired = sum(
        generation.fail(Generation.ACTIVE, ProviderError(ErrorKind.EXPIRED, "no result in time"))
        for generation in Generation.objects.filter(status__in=Generation.ACTIVE, created_at__lt=deadline)
    )
    if work_left():
        wake_sweeper()
    return {"expired": expired}


def wake_when_lease_lapses() -> None:
    """For a starting worker: once a dead sweep's lease has lapsed, start a new one."""
    for _ in range(3):
        lease = SweepLease.objects.filter(name=SWEEP).first()
        if lease is None or lease.expires_at <= timezone.now():
            break
        time.sleep(min(LEASE_SECONDS, (lease.expires_at - timezone.now()).total_seconds()) + 0.1)
    if work_left():
        wake_sweeper()
    connection.close()
