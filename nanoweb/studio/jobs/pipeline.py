"""One job's life: start, submit, retry or fail over, follow, hand over to finishing.

The sweep (`sweep.py`) decides when each step runs and calls `submit` or `follow` on a
claimed job; a job the provider is done with goes to a finishing task (`finishing.py`).
Every state change is a conditional update (`Generation.advance`), so work done twice (a
redelivered task, a step that outlived its claim) does no harm.
"""

from __future__ import annotations

import functools
import logging
import random
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.urls import reverse
from django.utils import timezone

from nanoweb.credits import ledger
from nanoweb.lib.ratelimit import Budget, Permit, RateLimiter
from nanoweb.providers import routing, vendor_models
from nanoweb.providers.base import (
    Adapter,
    ErrorKind,
    GenerationRequest,
    InlineImage,
    ProviderError,
    ProviderStatus,
    State,
    Submitted,
)
from nanoweb.providers.models import Attempt
from nanoweb.studio import references
from nanoweb.studio.jobs import finishing, leases, schedule
from nanoweb.studio.jobs.spec import JobSpec
from nanoweb.studio.models import NAMES_ITS_TIME, Generation, ReferenceImage

log = logging.getLogger(__name__)
Status = Generation.Status
SWEEP = "poll"  # the sweep's lease
IDLE_TICK = 0.05  # how often a sweep with nothing to do looks for due jobs
HISTORY_WINDOW = 50  # recent durations per account that the schedule learns from
HISTORY_SECONDS = 10.0  # how long a process keeps an account's history before reading it again
limiter = RateLimiter()
# Accounts whose budget over a minute or an hour is short, as the sweep last weighed them:
# their jobs get one read each, where it is likeliest to find them done (schedule.Vendor.tight).
tight_accounts: set[int] = set()


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
        raise NoAccount(f"No available account serves {spec.model_name} with these options any more: choose again.")
    row = rows[0]
    options = replace(spec.options, resolution=spec.options.resolution or row.default_resolution)
    price = row.price(options.resolution)
    if spec.lane == Generation.VENDOR:
        price = ledger.vendor_batch_price(price)
    group = spec.group or (uuid.uuid4() if spec.count > 1 else None)
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
                    lane=spec.lane,
                    # A vendor batch's jobs are sent together (nanoweb.batches.vendor), not by the sweep.
                    due_at=None if spec.lane == Generation.VENDOR else timezone.now(),
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
    """Stop following the job and refund it. A result that still arrives is discarded, and
    so are result bytes kept for a finishing task that will no longer run."""
    canceled = generation.advance(
        Generation.ACTIVE,
        Status.CANCELED,
        error_message="Canceled: if the provider still finishes, the result is discarded.",
    )
    if canceled:
        kept = Generation.objects.values_list("results", flat=True).get(pk=generation.pk)
        transaction.on_commit(lambda: finishing.discard_kept(kept))
    return canceled


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
    Generation.objects.filter(pk=generation.pk, status__in=Generation.FOLLOWED).update(due_at=timezone.now())
    wake_sweeper()


def adopt(generation: Generation, task_id: str) -> bool:
    """A callback names the task of a job whose create was cut off (its process died before the
    answer, `sweep.recover_held`): the provider did start the job. Follow it from here once a
    status read with our key finds the task (the callback's body is not trusted). True if adopted."""
    if not task_id or Generation.objects.filter(account_id=generation.account_id, provider_task_id=task_id).exists():
        return False
    try:
        adapter_for(generation, None).status(task_id)
    except ProviderError as error:
        log.info("generation %s: a callback named task %r, which %s", generation.pk, task_id[:80], error)
        return False
    finally:
        sent.pop(generation.pk, None)
    attempt = generation.attempt_log.filter(outcome=Attempt.Outcome.SENDING).last()
    adopted = generation.advance(
        Status.SUBMITTING, Status.SUBMITTED, provider_task_id=task_id, claim="", waiting_reason="",
        submitted_at=attempt.started_at if attempt else timezone.now(), due_at=timezone.now(),
    )  # fmt: skip
    if adopted:
        end_attempt(attempt, Attempt.Outcome.ACCEPTED)
        wake_sweeper()
    return adopted


def wake_sweeper() -> None:
    """Start a sweep unless one holds the lease. Safe to call from anywhere, often."""
    leases.wake(SWEEP, "nanoweb.studio.jobs.sweep.sweep", first=timedelta(seconds=15))


def reschedule(generation: Generation, delay: float, *, status: str | None = None, **fields: Any) -> None:
    """Come back to this job after `delay` seconds (and release this sweep's claim), moving
    it to `status` on the way if given. A callback that woke the job while this read was out
    moved its `due_at`: that earlier time stays (the read may have come just before the
    provider finished; otherwise the job would wait for its next safety-net read)."""
    later = timezone.now() + timedelta(seconds=delay)
    claimed = generation.due_at
    generation.advance(
        generation.status,
        status or generation.status,
        due_at=Case(When(due_at=claimed, then=Value(later)), default=F("due_at")),
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
    in_vendor_batch = generation.lane == Generation.VENDOR  # hours, not seconds: read rarely
    return schedule.Vendor(
        min_interval=settings.VENDOR_BATCH_POLL_SECONDS if in_vendor_batch else adapter.min_poll_interval,
        reports_progress=adapter.reports_progress,
        pushes=uses_callbacks(generation),
        tight=generation.account_id in tight_accounts,
        typical=adapter.typical_seconds,
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
    Generation.objects.filter(pk=generation.pk, status=generation.status, due_at=generation.due_at).update(
        due_at=began + timedelta(seconds=when)
    )
    return True


def out_of_budget(generation: Generation, budget: Budget) -> None:
    """The account's budget over a minute or an hour is spent (for a create: all but the reads
    owed to the jobs already out), and the vendor would refuse (429) what we send before it
    frees. A job to submit moves to another account at once (unless pinned), or waits, its
    card saying why and until when; a read waits. Nothing is sent, so nothing is refused."""
    account = generation.account
    if generation.status != Status.QUEUED:
        Generation.objects.filter(pk=generation.pk, status=generation.status, due_at=generation.due_at).update(
            due_at=datetime.fromtimestamp(budget.free_at, UTC)
        )
        return
    free = datetime.fromtimestamp(budget.create_free_at, UTC)
    window = budget.full or account.limits.long_windows[0]
    why = f"{account.name} allows {account.limits.describe(window)}"
    if fail_over(generation, Status.QUEUED, f"{why}; trying another account"):
        return
    at = timezone.localtime(free).strftime("%H:%M")
    if free > generation.deadline:
        error = ProviderError(ErrorKind.RATE_LIMITED, f"{why}; the next is free at {at}, after this job's deadline")
        generation.fail(Status.QUEUED, error)
        return
    generation.advance(Status.QUEUED, Status.QUEUED, due_at=free, waiting_reason=f"{why}{NAMES_ITS_TIME}{at}")


def learn(generation: Generation, error: ProviderError) -> float:
    """A 429 that came anyway teaches the account's limiter (its Retry-After, or else the
    window); the seconds until the account may be asked again (0 for other errors)."""
    if error.kind != ErrorKind.RATE_LIMITED:
        return 0.0
    until = limiter.refused(str(generation.account_id), generation.account.limits, error.retry_after)
    return max(0.0, until - time.time())


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
        reference_images=inline_images(tuple((ref.pk, ref.sha256) for ref in refs)) if inline and refs else (),
        callback_url=callback_url,
        idempotency_key=str(generation.uuid),
    )


@functools.lru_cache(maxsize=2)
def inline_images(references: tuple[tuple[int, str], ...]) -> tuple[InlineImage, ...]:
    """A set's references (id and checksum) as one inline payload, read and encoded once for all
    its jobs, which run at once: not once per job (a set of 4 with 14 MB of references held 4
    copies of each, in bytes and in base64). The last two sets are kept."""
    ids = [pk for pk, _ in references]
    found = {ref.pk: ref for ref in ReferenceImage.objects.filter(pk__in=ids).select_related("result")}
    return tuple(InlineImage(found[pk].read(), found[pk].mime_type) for pk in ids)


def adapter_for(generation: Generation, permit: Permit | None) -> Adapter:
    """The account's adapter; every request it makes waits for the account's rate limit
    (through the sweep's permit, or directly when called outside a sweep)."""
    adapter = generation.account.adapter()

    def wait_for_the_rate_limit() -> None:
        if permit is None:
            limiter.acquire(str(generation.account_id), generation.account.limits)
        else:
            permit.use()
        sent[generation.pk] = timezone.now()

    adapter.before_request = wait_for_the_rate_limit
    return adapter


# When each job's last request really left (after any wait for the rate limit), by job;
# and when the vendor most likely accepted its create.
sent: dict[int, datetime] = {}
accepted: dict[int, datetime] = {}


def moment_of(generation: Generation, answered: datetime) -> datetime:
    """When the vendor most likely handled the request just answered: halfway between its
    sending and its answer. Counting from before a wait for the rate limit (or a slow create)
    put every later read of the job early by that much, before the vendor had finished."""
    began = sent.pop(generation.pk, None) or answered
    return began + (answered - began) / 2


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
    # While the create is out (a slow vendor may take many seconds to answer), this process
    # holds the job: only once the process is dead does the sweep recover it (`sweep.recover_held`).
    sending = {"attempts": generation.attempts + 1, "waiting_reason": "", "claim": leases.token()}
    with leases.holding(generation.pk):
        if adapter.synchronous:
            # The call itself brings the image, 10-60 s later: the job is RUNNING meanwhile.
            if generation.advance(
                Status.QUEUED, Status.RUNNING, **sending, submitted_at=now, due_at=leases.hold_end()
            ) and (submitted := create(generation, adapter)):
                seconds = (timezone.now() - now).total_seconds()
                status = submitted.status or ProviderStatus(State.FAILED)
                finishing.hand_over(generation, status, old=Status.RUNNING, provider_seconds=seconds)
            return
        if not generation.advance(Status.QUEUED, Status.SUBMITTING, **sending, due_at=leases.hold_end()):
            return  # cancelled meanwhile
        if not (submitted := create(generation, adapter)):
            return
    first_read = schedule.next_read(schedule.Job(elapsed=0.0), history(generation), vendor(generation))
    began = accepted.pop(generation.pk, now)  # the job's time counts from the vendor's
    generation.advance(
        Status.SUBMITTING,
        Status.SUBMITTED,
        provider_task_id=submitted.task_id,
        submitted_at=began,
        claim="",
        due_at=began + timedelta(seconds=first_read),
    )


def create(generation: Generation, adapter: Adapter) -> Submitted | None:
    """The create call, recorded as an attempt; None when the provider refused it (and
    `after_refusal` decided what becomes of the job)."""
    recorded = record_attempts_as_sent(adapter, [generation])
    try:
        submitted = adapter.create(provider_request(generation))
    except ProviderError as error:
        sent.pop(generation.pk, None)
        after_refusal(generation, adapter, recorded[0] if recorded else None, error)
        return None
    accepted[generation.pk] = moment_of(generation, timezone.now())  # before our own writes
    end_attempt(recorded[0], Attempt.Outcome.ACCEPTED)
    return submitted


def record_attempts_as_sent(adapter: Adapter, jobs: list[Generation]) -> list[Attempt]:
    """Have the adapter's next request record one attempt per job (the list it returns fills
    then) as it leaves, after any wait for the rate limit: a job whose process died before
    there was one never reached the provider, and is sent again (`sweep.recover_held`)."""
    recorded: list[Attempt] = []
    wait = adapter.before_request

    def record_as_it_leaves() -> None:
        wait()
        if not recorded:
            rows = [Attempt(generation=job, account=job.account, model_id=job.model) for job in jobs]
            recorded.extend(Attempt.objects.bulk_create(rows))

    adapter.before_request = record_as_it_leaves
    return recorded


def end_attempt(
    attempt: Attempt | None, outcome: str, error: ProviderError | None = None, *, ambiguous: bool = False
) -> None:
    """Record how a create ended; `ambiguous`: the provider may have started the job anyway."""
    if attempt is not None:
        Attempt.objects.filter(pk=attempt.pk).update(
            outcome=outcome, ended_at=timezone.now(), ambiguous=ambiguous, **Attempt.error_fields(error)
        )


# Create refusals that say "not here, not now" although the job is fine: another account may
# take it at once. (Rate limits count only without a near Retry-After: NEAR_RETRY_SECONDS.)
MOVE_ON = {
    ErrorKind.AUTH, ErrorKind.OUT_OF_CREDIT, ErrorKind.UNKNOWN_MODEL, ErrorKind.BLOCKED_ADDRESS,
    ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE,
}  # fmt: skip
PAUSE = {ErrorKind.AUTH, ErrorKind.OUT_OF_CREDIT}  # until staff resume the account
NEAR_RETRY_SECONDS = 10.0


def after_refusal(generation: Generation, adapter: Adapter, attempt: Attempt | None, error: ProviderError) -> None:
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
        vendor_models.mark_missing(account.pk, generation.model)
    if error.kind in PAUSE and pause_confirmed(adapter):
        account.pause(f"{error.message} ({error.detail[:200]})")
    refused_until = learn(generation, error)
    if error.ambiguous and not adapter.idempotent:
        end_attempt(attempt, Attempt.Outcome.FAILED, error)
        not_again = "(not sent again: the provider may have started the job, and it cannot dedupe a repeat)"
        generation.fail(current, error, provider_said=True, note=not_again)
        return
    why = waiting_reason(account.name, error)
    near = error.retry_after is not None and error.retry_after <= NEAR_RETRY_SECONDS
    refused = error.kind in MOVE_ON and not (error.kind == ErrorKind.RATE_LIMITED and near) and not error.ambiguous
    if refused and fail_over(generation, current, f"{why}; trying another account"):
        end_attempt(attempt, Attempt.Outcome.MOVED, error)
        return
    delay = max(error.retry_after or 0.0, retry_delay(generation.attempts), refused_until)
    if error.retryable and error.kind not in PAUSE and within_retry_window(generation, delay):
        end_attempt(attempt, Attempt.Outcome.RETRIED, error, ambiguous=error.ambiguous)
        moved = generation.advance(
            current, Status.QUEUED, claim="", due_at=timezone.now() + timedelta(seconds=delay), waiting_reason=why
        )
        if moved:
            log.info("generation %s: %s, submitting again in %.1f s", generation.pk, error, delay)
        return
    end_attempt(attempt, Attempt.Outcome.FAILED, error)
    note = ""
    if refused and generation.attempt_log.filter(ambiguous=True).exists():
        note = "(not moved to another account: an earlier create here may still be running)"
    generation.fail(current, error, provider_said=True, note=note)


def pause_confirmed(adapter: Adapter) -> bool:
    """Whether a key or credit refusal is about the account beyond doubt: a cheap call with the
    key (balance, model list) is refused the same way. Some vendors answer one prompt's refusal
    with a 403: that fails (or moves) the job alone, never the team's account. Without such a
    call the account is not paused; health routing tries it after the others meanwhile."""
    try:
        adapter.check_account()
    except ProviderError as check:
        return check.kind in PAUSE
    return False


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
    if generation.attempt_log.filter(ambiguous=True).exists():
        return False  # the provider may still be running an earlier create: another account would charge again
    tried = {generation.account_id, *generation.attempt_log.values_list("account_id", flat=True)}
    for row in routing.candidates(generation.need(), exclude=tried):
        price = row.price(generation.resolution)
        try:
            with transaction.atomic():
                ledger.reprice(generation, price, reason=f"moved from {generation.account} to {row.account}")
                moved = generation.advance(
                    current, Status.QUEUED, account=row.account, model=row.model_id, price=price,
                    claim="", due_at=timezone.now(), waiting_reason=why,
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


def retry_delay(attempt: int) -> float:
    """Exponential, capped at a minute, with jitter so that retries do not arrive together."""
    return min(60.0, 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def expired(generation: Generation) -> bool:
    """End a job that ran past its deadline (counted from creation). True if it was ended."""
    now = timezone.now()
    if now <= generation.deadline:
        return False
    age = (now - generation.created_at).total_seconds()
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
        now = moment_of(generation, timezone.now())
        elapsed = facts(generation, now).elapsed
        not_yet = error.kind == ErrorKind.NOT_FOUND and elapsed < adapter.not_found_grace
        if not (error.retryable or not_yet):
            generation.fail(Generation.FOLLOWED, error, provider_said=True)
            return
        delay = max(
            error.retry_after or 0,
            retry_delay(generation.poll_errors + 1),
            rules.min_interval,
            learn(generation, error),
        )
        reschedule(generation, delay, poll_count=F("poll_count") + 1, poll_errors=F("poll_errors") + 1)
        return
    answered = timezone.now()
    now = moment_of(generation, answered)
    before = facts(generation, now)
    if status.state in (State.SUCCEEDED, State.FAILED):
        planned = facts(generation, generation.due_at or now).elapsed
        estimate = schedule.completion_estimate(
            done_read=before.elapsed,
            scheduled=planned,
            last_read=before.last_read,
            eta=schedule.centred_eta(before.progress, before.progress_at) if rules.reports_progress else None,
            pushed=rules.pushes,
            history=history(generation),
        )
        finishing.hand_over(
            generation, status, old=Generation.FOLLOWED, provider_seconds=estimate, poll_count=F("poll_count") + 1
        )
        return
    usable = rules.reports_progress and schedule.usable_progress(generation.progress, status.progress)
    progress = status.progress if usable else generation.progress
    # The vendor's interval counts from the answer (it may have seen the read that late);
    # the progress figure from the moment the vendor most likely computed it.
    read = facts(generation, answered).elapsed
    job = schedule.Job(
        elapsed=read,
        last_read=read,
        progress=progress,
        progress_at=before.elapsed if usable else None,
    )
    next_read = schedule.next_read(job, history(generation), rules)
    reschedule(
        generation,
        next_read - facts(generation, timezone.now()).elapsed,
        status=Status.RUNNING if status.state == State.RUNNING else generation.status,
        progress_at=now if usable else None,
        last_read_at=answered,
        poll_count=F("poll_count") + 1,
        **({"progress": progress} if progress != generation.progress else {}),  # a change pages show
    )
