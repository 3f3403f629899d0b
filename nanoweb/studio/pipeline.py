"""The job pipeline: submit, follow, hand over to finishing, recover.

No job holds a worker while the provider works. One poll sweep at a time (a bounded
django-q task holding a lease in the database) claims the jobs that are due (new ones to
submit, running ones whose next status read has come), works on them concurrently in a
thread pool over pooled connections, and relays to a successor task before its time is up.

Because every provider request of the team goes through the one sweep, a per-account
rate limit holds across all worker processes. When each job is read comes from
`schedule.py`; when an account's budget is short, the reads likeliest to find a job done
go first. A job the provider is done with goes to a finishing task that any worker of any
cluster may run (`finishing.py`). Every state change is a conditional update, so work done
twice (a redelivered task, a sweep that outlived its lease) does no harm.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Case, F, Value, When
from django.urls import reverse
from django.utils import timezone
from django_q.tasks import async_task

from nanoweb.credits import ledger
from nanoweb.lib.ratelimit import Permit, RateLimiter
from nanoweb.providers import routing
from nanoweb.providers.base import (
    Adapter,
    ErrorKind,
    GenerationRequest,
    ProviderError,
    ProviderStatus,
    State,
    Submitted,
)
from nanoweb.providers.models import Attempt
from nanoweb.studio import finishing, holds, references, schedule
from nanoweb.studio.models import Generation, SweepLease
from nanoweb.studio.spec import JobSpec

log = logging.getLogger(__name__)
Status = Generation.Status
SWEEP = "poll"
LEASE_SECONDS = 5.0  # a dead sweep's work is taken over after this
RENEW_EVERY = 0.5  # seconds between renewals of a working sweep's lease
IDLE_TICK = 0.05  # how often a sweep with nothing to do looks for due jobs
# A sweep weighs the due jobs at most this often: weighing reads every candidate, and in a
# burst of results a claim after every finished read cost more than the reads themselves.
CLAIM_PAUSE = 0.02
CANDIDATES = 256  # due (and soon due) jobs a sweep weighs at each tick
# What weighing a candidate reads of it.
SCHEDULING_FIELDS = (
    "status", "account", "resolution", "created_at", "submitted_at", "next_poll_at", "last_read_at", "progress",
    "progress_at",
)  # fmt: skip
HISTORY_WINDOW = 50  # recent durations per account that the schedule learns from
HISTORY_SECONDS = 10.0  # how long a process keeps an account's history before reading it again
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
            if spec.count > 1:  # refused as a whole, quoting the price of all the images
                ledger.refuse_unless_affordable(owner, price * spec.count, spec.count)
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
            refs = [*spec.reused_references, *refs]
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


def cancel_set(owner: Any, group: uuid.UUID) -> int:
    """Cancel (and refund) every job of this person's set that has not finished; how many."""
    running = Generation.objects.filter(owner=owner, group=group, status__in=Generation.ACTIVE)
    return sum(cancel(generation) for generation in running)


def wake(generation: Generation) -> None:
    """Make the job due now: a provider callback said it changed.

    The vendor's polling interval spaces our own reads while we wait; it does not hold back
    the read the vendor asks for (a safety-net read a moment before the provider finished
    would otherwise make the callback wait out the interval). A replayed callback costs one
    read within the account's rate limit."""
    if generation.account.adapter_class.synchronous:
        return  # no status to read: the call itself brings the answer
    Generation.objects.filter(pk=generation.pk, status__in=Generation.FOLLOWED).update(next_poll_at=timezone.now())
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
    """Jobs a sweep must come back to: to submit, to read, or to check on their holder."""
    return Generation.objects.filter(status__in=Generation.DUE_STATES, next_poll_at__isnull=False)


def work_left() -> bool:
    """Something a sweep must do: due jobs, or submits a dead sweep left half done."""
    return pollable().exists() or Generation.objects.filter(status=Status.SUBMITTING).exists()


def sweep_limit() -> float:
    """The longest a sweep task runs: well inside django-q's timeout, which would kill it."""
    return settings.TASK_TIMEOUT - 60


def _renew(token: str) -> bool:
    expires = timezone.now() + timedelta(seconds=LEASE_SECONDS)
    return bool(SweepLease.objects.filter(name=SWEEP, holder=token).update(expires_at=expires))


def sweep(token: str) -> None:
    """Work on every due job; after SWEEP_SECONDS, relay to a successor task."""
    if not take_over(token):
        return
    lease = SweepLease.objects.get(name=SWEEP)
    limiter.restore(lease.limiter_state)
    recover_interrupted_submits(token)
    began = time.monotonic()
    successor = ""
    running: set[Future] = set()  # futures the hand-over waits for
    calls: set[Future] = set()  # synchronous provider calls: minutes long, held by this process
    renewed = claimed_at = 0.0
    while True:
        if time.monotonic() - renewed >= RENEW_EVERY:
            if not _renew(token):
                log.warning("sweep %s lost its lease", token[:8])
                break
            renewed = time.monotonic()
        age = time.monotonic() - began
        if age >= sweep_limit():
            break
        if age >= settings.SWEEP_SECONDS:
            if not successor:
                successor = call_successor(token)
            elif successor_waiting(token, successor):
                break
        if (since := time.monotonic() - claimed_at) < CLAIM_PAUSE:
            time.sleep(CLAIM_PAUSE - since)
        room = settings.SWEEP_CONCURRENCY * 2 - len(running) - len(calls)
        claimed, next_due = claim_due(token, limit=room) if room > 0 else ([], None)
        claimed_at = time.monotonic()
        for generation, permit in claimed:
            future = thread_pool().submit(step_in_thread, generation, permit)
            long_call = generation.status == Status.QUEUED and generation.account.adapter_class.synchronous
            group = calls if long_call else running
            group.add(future)
            future.add_done_callback(group.discard)
        if claimed:
            continue
        # Look again when the next read is due, to the millisecond, or after a tick (new jobs).
        pause = IDLE_TICK if next_due is None else min(IDLE_TICK, max(0.0, next_due - time.time()))
        busy = running | calls
        if busy:
            wait(busy, timeout=pause, return_when=FIRST_COMPLETED)  # a finished step may free room
        elif next_due is not None or pollable().exists():
            time.sleep(pause)
        else:
            break  # nothing in flight: the next submit or callback wakes a new sweep
    # Finish what this sweep claimed before the lease goes to a successor.
    wait(running, timeout=settings.OUTBOUND_TIMEOUT + 10)
    handed = hand_over_lease(token, successor)
    # After releasing: a job submitted meanwhile either saw the free lease or is seen here.
    if not handed and pollable().exists():
        wake_sweeper()


def take_over(token: str) -> bool:
    """Become the sweep: the lease is ours (`wake_sweeper` or a hand-over gave it to us), or
    we are the successor a sweep called (we wait for its hand-over), or it lapsed with work
    left. Otherwise another sweep runs, and this task ends."""
    give_up = time.monotonic() + sweep_limit()
    while time.monotonic() < give_up:
        if _renew(token):
            return True
        now = timezone.now()
        lease = SweepLease.objects.filter(name=SWEEP).first()
        if lease is None:
            return False
        if lease.holder == token:
            continue  # handed over between the two queries: renew it at the top
        if lease.expires_at <= now:
            if not work_left():
                return False
            expires = now + timedelta(seconds=LEASE_SECONDS)
            lapsed = SweepLease.objects.filter(name=SWEEP, expires_at__lte=now)
            if lapsed.update(holder=token, expires_at=expires, successor="", waiting=""):
                return True
            continue
        if lease.successor != token:
            return False
        if lease.waiting != token:
            SweepLease.objects.filter(name=SWEEP, successor=token).update(waiting=token)
        time.sleep(IDLE_TICK)
    return False


def call_successor(token: str) -> str:
    """Start the task that takes over from this sweep. It may wait in the queue (behind
    finishing tasks, say): this sweep goes on until it runs, so polling never pauses."""
    successor = uuid.uuid4().hex
    if not SweepLease.objects.filter(name=SWEEP, holder=token).update(successor=successor, waiting=""):
        return ""
    async_task(sweep, successor, task_name=f"sweep-{successor[:8]}")
    return successor


def successor_waiting(token: str, successor: str) -> bool:
    return SweepLease.objects.filter(name=SWEEP, holder=token, waiting=successor).exists()


def hand_over_lease(token: str, successor: str) -> bool:
    """Give the lease to a waiting successor, or release it. True if handed over."""
    now = timezone.now()
    fields = {"limiter_state": limiter.snapshot(), "successor": "", "waiting": ""}
    mine = SweepLease.objects.filter(name=SWEEP, holder=token)
    if successor and mine.filter(waiting=successor).update(
        holder=successor, expires_at=now + timedelta(seconds=LEASE_SECONDS), **fields
    ):
        return True
    mine.update(expires_at=now, **fields)
    return False


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


def held(generation: Generation) -> bool:
    """A process holds this job (a synchronous call, or finishing): it is due only when
    that process stopped renewing its lease."""
    synchronous_call = generation.status == Status.RUNNING and generation.account.adapter_class.synchronous
    return generation.status == Status.FINISHING or synchronous_call


def claim_due(token: str, *, limit: int) -> tuple[list[tuple[Generation, Permit]], float | None]:
    """Claim the due jobs this sweep works on now, each with a permit for its request:
    per account, as many as its rate limit leaves room for, the likeliest first. Also says
    when (epoch seconds) the next job not yet due comes due, if within LOOKAHEAD.

    A claim by another token is stale: only one sweep holds the lease, and a sweep hands
    over only after its claimed work is done.
    """
    now = timezone.now()
    soon = now + timedelta(seconds=schedule.LOOKAHEAD)
    candidates = (
        Generation.objects.filter(status__in=Generation.DUE_STATES, next_poll_at__lte=soon)
        .exclude(claim=token)
        .select_related("account")
        .only(*SCHEDULING_FIELDS)  # weighed at every tick; the claimed ones are read whole below
        .order_by("next_poll_at")[:CANDIDATES]
    )
    per_account: dict[int, list[Generation]] = defaultdict(list)
    due_at = {generation.pk: generation.next_poll_at or now for generation in candidates}
    upcoming = [at.timestamp() for at in due_at.values() if at > now]
    next_due = min(upcoming) if upcoming else None
    for generation in candidates:
        if not held(generation):
            per_account[generation.account_id].append(generation)
        elif due_at[generation.pk] <= now:
            recover_held(generation, token)
    chosen: list[Generation] = []
    for jobs in per_account.values():
        account = jobs[0].account
        due, likely_soon = [], 0
        for generation in jobs:
            odds = request_odds(generation, max(now, due_at[generation.pk]))
            if due_at[generation.pk] > now:
                likely_soon += odds >= schedule.LIKELY
            elif not deferred(generation, now):
                due.append((generation, odds))
        room = min(limiter.room(str(account.pk), account.rate_limit), limit - len(chosen))
        chosen += [generation for generation, _ in schedule.allocate(due, lambda pair: pair[1], room, likely_soon)]
    if not chosen:
        return [], next_due
    Generation.objects.filter(pk__in=[g.pk for g in chosen], status__in=Generation.DUE_STATES).exclude(
        claim=token
    ).update(claim=token)
    claimed = Generation.objects.filter(pk__in=[g.pk for g in chosen], claim=token).select_related("account")
    permits = [(job, limiter.promise(str(job.account_id), job.account.rate_limit)) for job in claimed]
    return permits, next_due


def recover_held(generation: Generation, token: str) -> None:
    """The process holding this job stopped renewing its lease (it died, or its task never
    started). A finishing job goes to a new task. A synchronous call is lost with its
    process: the provider may have made the image, but it will never reach us, and the
    call cannot be made again without risking a second charge, so the job ends, refunded."""
    if generation.status == Status.FINISHING:
        finishing.requeue_lost(generation)
        return
    lapsed = Generation.objects.filter(pk=generation.pk, status=Status.RUNNING, next_poll_at__lte=timezone.now())
    if lapsed.update(claim=token, next_poll_at=None):
        error = ProviderError(
            ErrorKind.INTERNAL,
            "the worker process waiting for the provider's answer stopped; the call cannot be resumed",
        )
        generation.fail(Status.RUNNING, error)


def step(generation: Generation, permit: Permit) -> None:
    """One piece of work on a claimed job: submit it, or read its status."""
    if generation.status == Status.QUEUED:
        submit(generation, permit)
    elif generation.status in Generation.FOLLOWED:
        follow(generation, permit)


def step_in_thread(generation: Generation, permit: Permit) -> None:
    """`step` on the job as it was claimed (read just after the claim, so it is current)."""
    try:
        step(generation, permit)
    except Exception as exc:
        log.exception("generation %s failed in the sweep", generation.pk)
        Generation.objects.get(pk=generation.pk).fail(Generation.ACTIVE, ProviderError(ErrorKind.INTERNAL, repr(exc)))
    finally:
        permit.release()
        connection.close_if_unusable_or_obsolete()  # kept for the thread's next step (CONN_MAX_AGE)


def reschedule(generation: Generation, delay: float, *, status: str | None = None, **fields: Any) -> None:
    """Come back to this job after `delay` seconds (and release this sweep's claim), moving
    it to `status` on the way if given. A callback that woke the job while this read was out
    moved its `next_poll_at`: that earlier time stays (the read may have come just before the
    provider finished; otherwise the job would wait for its next safety-net read)."""
    later = timezone.now() + timedelta(seconds=delay)
    claimed = generation.next_poll_at
    generation.advance(
        generation.status,
        status or generation.status,
        next_poll_at=Case(When(next_poll_at=claimed, then=Value(later)), default=F("next_poll_at")),
        claim="",
        **fields,
    )


# --- scheduling -------------------------------------------------------------------

_history: dict[tuple[int, str], tuple[schedule.Durations, float]] = {}


def history(generation: Generation) -> schedule.Durations:
    """The account's recent provider durations, for this resolution when there are enough."""
    key = (generation.account_id, generation.resolution)
    known = _history.get(key)
    if known and time.monotonic() - known[1] < HISTORY_SECONDS:
        return known[0]
    recent = (
        Generation.objects.filter(account_id=generation.account_id, provider_seconds__isnull=False)
        .order_by("-pk")
        .values_list("resolution", "provider_seconds")[: HISTORY_WINDOW * 4]
    )
    known_seconds = [(resolution, seconds) for resolution, seconds in recent if seconds is not None]
    alike = [seconds for resolution, seconds in known_seconds if resolution == generation.resolution]
    if len(alike) < schedule.MIN_SAMPLES:
        alike = [seconds for _, seconds in known_seconds]
    durations = schedule.Durations.of(alike[:HISTORY_WINDOW])
    _history[key] = (durations, time.monotonic())
    return durations


def vendor(generation: Generation) -> schedule.Vendor:
    adapter = generation.account.adapter_class
    return schedule.Vendor(
        min_interval=adapter.min_poll_interval,
        reports_progress=adapter.reports_progress,
        pushes=uses_callbacks(generation),
    )


def facts(generation: Generation, now: datetime) -> schedule.Job:
    """The job as the schedule sees it, in seconds since its submission."""
    began = generation.submitted_at or generation.created_at

    def since(moment: datetime | None) -> float | None:
        return (moment - began).total_seconds() if moment else None

    return schedule.Job(
        elapsed=(now - began).total_seconds(),
        last_read=since(generation.last_read_at),
        progress=generation.progress,
        progress_at=since(generation.progress_at),
    )


def request_odds(generation: Generation, at: datetime) -> float:
    """How likely a request for this job at `at` is worth it: a submit always is."""
    if generation.status == Status.QUEUED:
        return 1.0
    return schedule.done_odds(facts(generation, at), history(generation), vendor(generation))


def deferred(generation: Generation, now: datetime) -> bool:
    """Put off a due read the schedule no longer wants now (an early progress read that
    came too late to help, or a history that moved); True if it was put off."""
    if generation.status == Status.QUEUED or uses_callbacks(generation):
        return False  # a submit, or a callback woke it: go
    job = facts(generation, now)
    when = schedule.next_read(job, history(generation), vendor(generation))
    if when <= job.elapsed + IDLE_TICK:
        return False
    began = generation.submitted_at or generation.created_at
    Generation.objects.filter(pk=generation.pk, status=generation.status, next_poll_at=generation.next_poll_at).update(
        next_poll_at=began + timedelta(seconds=when)
    )
    return True


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


def adapter_for(generation: Generation, permit: Permit | None) -> Adapter:
    """The account's adapter; every request it makes waits for the account's rate limit
    (through the sweep's permit, or directly when called outside a sweep)."""
    adapter = generation.account.adapter()

    def wait_for_the_rate_limit() -> None:
        limiter.acquire(str(generation.account_id), generation.account.rate_limit)

    adapter.before_request = wait_for_the_rate_limit if permit is None else permit.use
    return adapter


def submit(generation: Generation, permit: Permit | None = None) -> None:
    """Send the job to the provider, recording the attempt. A synchronous API answers with
    the image itself."""
    if expired(generation):
        return
    account = generation.account
    if account.paused and fail_over(generation, Status.QUEUED, f"{account.name} is paused; trying another account"):
        return  # it would refuse: the job moves on without asking it again (else it answers for itself)
    adapter = adapter_for(generation, permit)
    now = timezone.now()
    sending = {"attempts": generation.attempts + 1, "waiting_reason": ""}
    if adapter.synchronous:
        # The call is out for 10-40 s: this process holds the job under its lease, so that
        # a call lost with the process ends within HOLD_SECONDS instead of at the deadline.
        with holds.holding(generation.pk):
            lease = {"submitted_at": now, "claim": holds.token(), "next_poll_at": holds.lease_end()}
            if generation.advance(Status.QUEUED, Status.RUNNING, **sending, **lease) and (
                submitted := create(generation, adapter)
            ):
                seconds = (timezone.now() - now).total_seconds()
                status = submitted.status or ProviderStatus(State.FAILED)
                finishing.hand_over(generation, status, old=Status.RUNNING, provider_seconds=seconds)
        return
    if not generation.advance(Status.QUEUED, Status.SUBMITTING, **sending):
        return  # cancelled meanwhile
    if not (submitted := create(generation, adapter)):
        return
    first_read = schedule.next_read(schedule.Job(elapsed=0.0), history(generation), vendor(generation))
    generation.advance(
        Status.SUBMITTING,
        Status.SUBMITTED,
        provider_task_id=submitted.task_id,
        submitted_at=now,
        claim="",
        next_poll_at=now + timedelta(seconds=first_read),
    )


def create(generation: Generation, adapter: Adapter) -> Submitted | None:
    """The create call, recorded as an attempt; None when the provider refused it (and
    `after_refusal` decided what becomes of the job)."""
    attempt = Attempt.objects.create(generation=generation, account=generation.account, model_id=generation.model)
    try:
        submitted = adapter.create(provider_request(generation))
    except ProviderError as error:
        after_refusal(generation, adapter, attempt, error)
        return None
    end_attempt(attempt, Attempt.Outcome.ACCEPTED)
    return submitted


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


def follow(generation: Generation, permit: Permit | None = None) -> None:
    """Read the job's status once and act on it: done goes to finishing, running gets its
    next read from the schedule."""
    if expired(generation):
        return
    adapter = adapter_for(generation, permit)
    rules = vendor(generation)
    try:
        status = adapter.status(generation.provider_task_id)
    except ProviderError as error:
        now = timezone.now()
        elapsed = facts(generation, now).elapsed
        not_yet = error.kind == ErrorKind.NOT_FOUND and elapsed < adapter.not_found_grace
        if not (error.retryable or not_yet):
            generation.fail(Generation.FOLLOWED, error, provider_said=True)
            return
        delay = max(error.retry_after or 0, backoff(generation.poll_errors + 1), rules.min_interval)
        reschedule(generation, delay, poll_count=F("poll_count") + 1, poll_errors=F("poll_errors") + 1)
        return
    now = timezone.now()
    before = facts(generation, now)
    if status.state in (State.SUCCEEDED, State.FAILED):
        planned = facts(generation, generation.next_poll_at or now).elapsed
        estimate = schedule.completion_estimate(
            done_read=before.elapsed,
            scheduled=planned,
            last_read=before.last_read,
            eta=before.eta if rules.reports_progress else None,
            pushed=rules.pushes,
            history=history(generation),
        )
        finishing.hand_over(generation, status, old=Generation.FOLLOWED, provider_seconds=estimate)
        return
    usable = rules.reports_progress and schedule.usable_progress(generation.progress, status.progress)
    progress = status.progress if usable else generation.progress
    job = schedule.Job(
        elapsed=before.elapsed,
        last_read=before.elapsed,
        progress=progress,
        progress_at=before.elapsed if usable else None,
    )
    next_read = schedule.next_read(job, history(generation), rules)
    reschedule(
        generation,
        next_read - before.elapsed,
        status=Status.RUNNING if status.state == State.RUNNING else generation.status,
        progress_at=now if usable else None,
        last_read_at=now,
        poll_count=F("poll_count") + 1,
        **({"progress": progress} if progress != generation.progress else {}),  # a change pages show
    )


# --- recovering -------------------------------------------------------------------


def reconcile() -> dict[str, int]:
    """The safety net, every minute: end jobs past their deadline (a synchronous call lost
    with its process ends here), and make sure a sweep runs while anything is due, and the
    renderer while any image waits for its renditions (a lost renderer's lease lapses)."""
    deadline = timezone.now() - timedelta(seconds=settings.JOB_DEADLINE_SECONDS)
    expired = sum(
        generation.fail(Generation.ACTIVE, ProviderError(ErrorKind.EXPIRED, "no result in time"))
        for generation in Generation.objects.filter(status__in=Generation.ACTIVE, created_at__lt=deadline)
    )
    if work_left():
        wake_sweeper()
    if finishing.waiting_for_renditions().exists():
        finishing.wake_renderer()
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
