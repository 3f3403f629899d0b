"""The poll sweep: one task at a time claims the jobs that are due and works on them.

No job holds a worker while the provider works. The sweep (a bounded django-q task holding
the named lease "poll", `leases.py`) claims the jobs that are due (new ones to submit,
running ones whose next status read has come), works on them concurrently in thread pools
over pooled connections, and relays to a successor task before its time is up.

Because every provider request of the team goes through the one sweep, a per-account rate
limit holds across all worker processes. When each job is read comes from `schedule.py`;
when an account's budget is short, the reads likeliest to find a job done go first.

Two pools: status reads and creates of task APIs are short and share one bounded pool;
synchronous calls (the Gemini API answers the create with the image, 10-60 s later) run in
their own, each account within its own concurrency (`ProviderAccount.max_in_flight`), so
that a busy synchronous account never delays another account's reads.

A job a process works on outside the sweep's claim (a create in flight, a synchronous
call, finishing) is held by that process (`leases.holding`): the sweep recovers it only
once the hold has lapsed, that is, once its process is dead.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from nanoweb.lib.ratelimit import Permit
from nanoweb.providers.base import ErrorKind, ProviderError
from nanoweb.providers.models import Attempt, ProviderAccount
from nanoweb.studio.jobs import finishing, leases, pipeline, schedule
from nanoweb.studio.jobs.pipeline import SWEEP
from nanoweb.studio.models import Generation, GenerationReference, Lease

log = logging.getLogger(__name__)
Status = Generation.Status
LEASE_SECONDS = 5.0  # a dead sweep's work is taken over after this
RENEW_EVERY = 0.5  # seconds between renewals of a working sweep's lease
# How often the sweep writes its limiter's state to the lease: what a successor starts from
# if this sweep dies (an hour's budget must survive a crash), and what the health page reads.
NOTE_LIMITS_EVERY = 5.0
IDLE_TICK = pipeline.IDLE_TICK
# A sweep weighs the due jobs at most this often: weighing reads every candidate, and in a
# burst of results a claim after every finished read cost more than the reads themselves.
CLAIM_PAUSE = 0.02
CANDIDATES = 256  # due (and soon due) jobs a sweep weighs at each tick
BATCH_CANDIDATES = 32  # and of batches' rows waiting to be sent or in a vendor's batch, after them
# What weighing a candidate reads of it.
SCHEDULING_FIELDS = (
    "status", "account", "resolution", "created_at", "submitted_at", "due_at", "last_read_at", "progress",
    "progress_at", "waiting_reason", "lane", "owner",
)  # fmt: skip
# Jobs an account has out at the provider: what its `max_in_flight` counts.
IN_FLIGHT = (Status.SUBMITTING, Status.SUBMITTED, Status.RUNNING)
# Of an inline account's `max_in_flight`, the share that may carry references (Gemini: 16 calls, 4
# with up to 14 MB of images each).
INLINE_SHARE = 4

_pools: dict[str, ThreadPoolExecutor] = {}


def pool(kind: str) -> ThreadPoolExecutor:
    """This process's pools, kept between sweeps, so that a synchronous call started by one
    sweep goes on while the next sweep runs: "steps" (short requests) and "calls"."""
    if kind not in _pools:
        size = settings.SWEEP_CONCURRENCY if kind == "steps" else settings.SYNC_CALL_THREADS
        _pools[kind] = ThreadPoolExecutor(size, thread_name_prefix=f"sweep-{kind}")
    return _pools[kind]


def pollable():
    """Jobs a sweep must come back to: to submit, to read, or to check on their holder."""
    return Generation.objects.filter(status__in=Generation.DUE_STATES, due_at__isnull=False)


def sweep_limit() -> float:
    """The longest a sweep task runs: well inside django-q's timeout, which would kill it."""
    return settings.TASK_TIMEOUT - 60


def _renew(token: str) -> bool:
    return leases.renew(SWEEP, token, LEASE_SECONDS)


def sweep(token: str) -> None:
    """Work on every due job; after SWEEP_SECONDS, relay to a successor task."""
    if not take_over(token):
        return
    lease = Lease.objects.get(name=SWEEP)
    pipeline.limiter.restore(lease.limiter_state)
    began = time.monotonic()
    successor = ""
    running: set[Future] = set()  # steps the hand-over waits for
    calls: set[Future] = set()  # synchronous calls: held by this process, not waited for
    renewed = claimed_at = noted = 0.0
    while True:
        if time.monotonic() - renewed >= RENEW_EVERY:
            if not _renew(token):
                log.warning("sweep %s lost its lease", token[:8])
                break
            renewed = time.monotonic()
            if renewed - noted >= NOTE_LIMITS_EVERY:
                note_limits(token)
                noted = renewed
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
        room = settings.SWEEP_CONCURRENCY * 2 - len(running)
        call_room = settings.SYNC_CALL_THREADS - len(calls)
        claimed, next_due = claim_due(token, limit=room, call_limit=call_room)
        claimed_at = time.monotonic()
        for generation, permit in claimed:
            long_call = generation.status == Status.QUEUED and generation.account.adapter_class.synchronous
            group = calls if long_call else running
            future = pool("calls" if long_call else "steps").submit(step_in_thread, generation, permit)
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
    # Finish what this sweep claimed before the lease goes to a successor, keeping the lease
    # meanwhile: a successor must never take jobs whose steps are still out.
    while running and time.monotonic() - began < settings.TASK_TIMEOUT - 10:
        wait(running, timeout=RENEW_EVERY)
        _renew(token)
    handed = hand_over_lease(token, successor)
    # After releasing: a job submitted meanwhile either saw the free lease or is seen here.
    if not handed and pollable().exists():
        pipeline.wake_sweeper()


_noted: dict[str, dict[str, list[int]]] = {}


def note_limits(token: str) -> None:
    """Write the limiter's state to the lease, and each account's requests per minute (what
    its health figures show) where they changed."""
    state = pipeline.limiter.snapshot()
    Lease.objects.filter(name=SWEEP, holder=token).update(limiter_state=state)
    counts, refusals = state["counts"], state["refusals"]
    for key in {*counts, *refusals}:
        minutes = {
            minute: [counts.get(key, {}).get(minute, 0), refusals.get(key, {}).get(minute, 0)]
            for minute in {*counts.get(key, {}), *refusals.get(key, {})}
        }
        if _noted.get(key) != minutes:
            ProviderAccount.objects.filter(pk=int(key)).update(requests_by_minute=minutes)
            _noted[key] = minutes


def take_over(token: str) -> bool:
    """Become the sweep: the lease is ours (`wake_sweeper` or a hand-over gave it to us), or
    we are the successor a sweep called (we wait for its hand-over), or it lapsed with work
    left. Otherwise another sweep runs, and this task ends."""
    give_up = time.monotonic() + sweep_limit()
    while time.monotonic() < give_up:
        if _renew(token):
            return True
        now = timezone.now()
        lease = Lease.objects.filter(name=SWEEP).first()
        if lease is None:
            return False
        if lease.holder == token:
            continue  # handed over between the two queries: renew it at the top
        if lease.expires_at <= now:
            if not pollable().exists():
                return False
            expires = now + timedelta(seconds=LEASE_SECONDS)
            lapsed = Lease.objects.filter(name=SWEEP, expires_at__lte=now)
            if lapsed.update(holder=token, expires_at=expires, successor="", waiting=""):
                return True
            continue
        if lease.successor != token:
            return False
        if lease.waiting != token:
            Lease.objects.filter(name=SWEEP, successor=token).update(waiting=token)
        time.sleep(IDLE_TICK)
    return False


def call_successor(token: str) -> str:
    """Start the task that takes over from this sweep. It may wait in the queue (behind
    finishing tasks, say): this sweep goes on until it runs, so polling never pauses."""
    from django_q.tasks import async_task

    successor = uuid.uuid4().hex
    if not Lease.objects.filter(name=SWEEP, holder=token).update(successor=successor, waiting=""):
        return ""
    async_task(sweep, successor, task_name=f"sweep-{successor[:8]}")
    return successor


def successor_waiting(token: str, successor: str) -> bool:
    return Lease.objects.filter(name=SWEEP, holder=token, waiting=successor).exists()


def hand_over_lease(token: str, successor: str) -> bool:
    """Give the lease to a waiting successor, or release it. True if handed over."""
    fields = {"limiter_state": pipeline.limiter.snapshot(), "successor": "", "waiting": ""}
    mine = Lease.objects.filter(name=SWEEP, holder=token)
    expires = timezone.now() + timedelta(seconds=LEASE_SECONDS)
    if successor and mine.filter(waiting=successor).update(holder=successor, expires_at=expires, **fields):
        return True
    leases.release(SWEEP, token, **fields)
    return False


def held(generation: Generation) -> bool:
    """A process holds this job (a create in flight, a synchronous call, or finishing): it
    is due only when that process stopped renewing its hold."""
    synchronous_call = generation.status == Status.RUNNING and generation.account.adapter_class.synchronous
    return generation.status in (Status.SUBMITTING, Status.FINISHING) or synchronous_call


def in_flight(account_ids: list[int], token: str) -> dict[int, int]:
    """Jobs each of these accounts has out at the provider now (across all processes), and the
    submits this sweep (`token`) claimed that have not started yet: under load a claimed submit
    waits a while for its thread, and uncounted, the next ticks claimed past `max_in_flight`."""
    rows = (
        Generation.objects.filter(
            Q(status__in=IN_FLIGHT) | Q(status=Status.QUEUED, claim=token), account_id__in=account_ids
        )
        .exclude(lane=Generation.VENDOR)  # waiting in the vendor's own batch, not in a call
        .values_list("account_id")
        .annotate(n=Count("pk"))
    )
    return dict(rows)


def claim_due(
    token: str, *, limit: int, call_limit: int | None = None
) -> tuple[list[tuple[Generation, Permit]], float | None]:
    """Claim the due jobs this sweep works on now, each with a permit for its request:
    per account, as many as its rate limit (and for submits, its `max_in_flight`) leaves
    room for, the likeliest first; at most `limit` short steps and `call_limit` synchronous
    calls. Also says when (epoch seconds) the next job not yet due comes due, if within
    LOOKAHEAD.

    Fair share: interactive jobs (and the status reads of jobs out at a provider) are weighed
    first; a batch's waiting rows and the reads of a vendor's batch after them, taking turns
    between their owners, and a batch's rows leave a quarter of an account's `max_in_flight`
    to interactive jobs (`within_in_flight`).

    A claim by another token is stale: only one sweep holds the lease, and a sweep hands
    over only after its claimed work is done.
    """
    call_limit = limit if call_limit is None else call_limit
    now = timezone.now()
    soon = now + timedelta(seconds=schedule.LOOKAHEAD)
    due_jobs = (
        Generation.objects.filter(status__in=Generation.DUE_STATES, due_at__lte=soon)
        .exclude(claim=token)
        .select_related("account")
        .only(*SCHEDULING_FIELDS)  # weighed at every tick; the claimed ones are read whole below
    )
    # A batch's rows waiting to be sent, and the reads of jobs in a vendor's batch (one read
    # serves all of that batch): weighed after everything else, a few per tick, each owner's
    # first on each account, then each one's second, ...
    background = Q(status=Status.QUEUED, lane=Generation.LIST) | Q(lane=Generation.VENDOR)
    candidates = [
        *due_jobs.exclude(background).order_by("due_at")[:CANDIDATES],
        *due_jobs.filter(background)
        .annotate(turn=Window(RowNumber(), partition_by=[F("owner_id"), F("account_id")], order_by=F("due_at").asc()))
        .order_by("turn", "due_at")[:BATCH_CANDIDATES],
    ]
    per_account: dict[int, list[Generation]] = defaultdict(list)
    due_at = {generation.pk: generation.due_at or now for generation in candidates}
    upcoming = [at.timestamp() for at in due_at.values() if at > now]
    next_due = min(upcoming) if upcoming else None
    for generation in candidates:
        if not held(generation):
            per_account[generation.account_id].append(generation)
        elif due_at[generation.pk] <= now:
            recover_held(generation, token)
    limited = [jobs[0].account_id for jobs in per_account.values() if jobs[0].account.in_flight_limit]
    out = in_flight(limited, token) if limited else {}
    chosen: list[Generation] = []
    steps = calls = 0
    for jobs in per_account.values():
        account = jobs[0].account
        synchronous = account.adapter_class.synchronous
        if account.limits.long_windows:  # a budget over a minute or an hour
            held_back = within_budget(account, [job for job in jobs if due_at[job.pk] <= now])
            jobs = [generation for generation in jobs if generation.pk not in held_back]
        due, likely_soon = [], 0
        for generation in jobs:
            odds = request_odds(generation, max(now, due_at[generation.pk]))
            if due_at[generation.pk] > now:
                likely_soon += odds >= schedule.LIKELY
            elif not pipeline.deferred(generation, now):
                due.append((generation, odds))
        room = pipeline.limiter.room(str(account.pk), account.limits)
        room = min(room, call_limit - calls) if synchronous else min(room, limit - steps)
        if limit_out := account.in_flight_limit:  # submits only: reads of jobs already out always go
            due = within_in_flight(due, limit_out - out.get(account.pk, 0), limit_out)
            if account.adapter_class.inline_references:
                due = within_inline_share(due, account.pk, max(1, limit_out // INLINE_SHARE))
        picked = [generation for generation, _ in schedule.allocate(due, lambda pair: pair[1], room, likely_soon)]
        chosen += picked
        if synchronous:
            calls += len(picked)
        else:
            steps += len(picked)
    if not chosen:
        return [], next_due
    Generation.objects.filter(pk__in=[g.pk for g in chosen], status__in=Generation.DUE_STATES).exclude(
        claim=token
    ).update(claim=token)
    claimed = Generation.objects.filter(pk__in=[g.pk for g in chosen], claim=token).select_related("account")
    permits = [(job, pipeline.limiter.promise(str(job.account_id), job.account.limits)) for job in claimed]
    return permits, next_due


def within_budget(account: ProviderAccount, due: list[Generation]) -> set[int]:
    """Weigh the account's budget over a minute or an hour (is it tight?) and hold back the
    due jobs it has no room for, before the vendor would refuse them: creates beyond what
    keeps a read for every job out, reads once nothing is left. Those that cannot go until it
    frees wait (or move on, `pipeline.out_of_budget`); the others are weighed again at the
    next tick. Returns the held back jobs' ids."""
    queued, out = active_jobs(account.pk)
    budget = pipeline.limiter.budget(str(account.pk), account.limits, jobs=queued + out, out=out)
    (pipeline.tight_accounts.add if budget.tight else pipeline.tight_accounts.discard)(account.pk)
    creates, held_back = budget.creates, set()
    for generation in due:
        if generation.status == Status.QUEUED:
            creates -= 1
            if creates >= 0:
                continue
            if budget.creates:  # room for fewer than are due: the rest at the next tick
                held_back.add(generation.pk)
                continue
        elif budget.room:
            continue
        pipeline.out_of_budget(generation, budget)
        held_back.add(generation.pk)
    return held_back


def active_jobs(account_id: int) -> tuple[int, int]:
    """Jobs the account has waiting to be sent, and out at the provider or being sent (each
    of these is owed a status read), now: exact, since a count even a second old let creates
    spend the reads of the jobs just sent."""
    sent = Q(status__in=IN_FLIGHT) | Q(status=Status.QUEUED, claim__gt="")
    jobs = Generation.objects.filter(account_id=account_id, status__in={Status.QUEUED, *IN_FLIGHT})
    counts = jobs.exclude(lane=Generation.VENDOR).aggregate(
        waiting=Count("pk", filter=Q(status=Status.QUEUED, claim="")), out=Count("pk", filter=sent)
    )
    return counts["waiting"], counts["out"]


def within_in_flight(due: list[tuple[Generation, float]], free: int, limit: int = 0) -> list[tuple[Generation, float]]:
    """The due steps, with at most `free` submits among them; a batch's rows leave a quarter
    of the account's `limit` free, so that a teammate's single image never waits for a slot."""
    headroom = limit // 4
    return with_slots(due, free, lambda job: job.status == Status.QUEUED, lambda job: headroom if job.lane else 0)


def within_inline_share(
    due: list[tuple[Generation, float]], account: int, limit: int
) -> list[tuple[Generation, float]]:
    """The due steps, with submits that carry references inline only as far as `limit` such
    calls in flight at the account allow (each holds its images in bytes, base64 and JSON)."""
    queued = [generation.pk for generation, _ in due if generation.status == Status.QUEUED]
    heavy = set(GenerationReference.objects.filter(generation__in=queued).values_list("generation_id", flat=True))
    if not heavy:
        return due
    out = Generation.objects.filter(account_id=account, status__in=IN_FLIGHT, reference_links__isnull=False)
    return with_slots(due, limit - out.distinct().count(), lambda job: job.pk in heavy)


def with_slots(
    due: list[tuple[Generation, float]],
    free: int,
    takes_slot: Callable[[Generation], bool],
    kept_free: Callable[[Generation], int] = lambda job: 0,
) -> list[tuple[Generation, float]]:
    """The due steps, in order, skipping those that take a slot once `free` slots are used (or
    once only `kept_free(job)` are left)."""
    kept = []
    for pair in due:
        if takes_slot(pair[0]):
            if free <= kept_free(pair[0]):
                continue
            free -= 1
        kept.append(pair)
    return kept


def request_odds(generation: Generation, at) -> float:
    """How likely a request for this job at `at` is worth it: a submit always is."""
    if generation.status == Status.QUEUED:
        return 1.0
    return schedule.done_odds(pipeline.facts(generation, at), pipeline.history(generation), pipeline.vendor(generation))


def recover_held(generation: Generation, token: str) -> None:
    """The process holding this job stopped renewing its hold (it died, or its task never
    started); nothing else makes a job due here.

    - Finishing goes to a new task.
    - A create that never left (no attempt: one is recorded as the request leaves) is sent again.
    - A create in flight: where the provider dedupes by our idempotency key it is sent
      again (on the same account, with the same key). Elsewhere it is never sent again (the
      provider may have started it): where the provider calls back, the job waits for it to
      report the task (`pipeline.adopt`), and comes back here at its deadline to end; without
      callbacks we cannot know, so it ends, refunded.
    - A synchronous call is lost with its process: the provider may have made the image,
      but it will never reach us, and the call cannot be made again without risking a
      second charge, so the job ends, refunded.
    """
    if generation.status == Status.FINISHING:
        finishing.requeue_lost(generation)
        return
    lapsed = Generation.objects.filter(pk=generation.pk, status=generation.status, due_at__lte=timezone.now())
    if not lapsed.update(claim=token, due_at=None):
        return  # renewed, or moved on, meanwhile
    generation = Generation.objects.select_related("account").get(pk=generation.pk)
    if pipeline.expired(generation):
        return
    attempt = generation.attempt_log.filter(outcome=Attempt.Outcome.SENDING).last()
    submitting = generation.status == Status.SUBMITTING
    resendable = attempt is None or generation.account.adapter_class.idempotent
    if submitting and resendable and pipeline.within_retry_window(generation, 0.0):
        if generation.advance(Status.SUBMITTING, Status.QUEUED, claim="", due_at=timezone.now()):
            interrupted = ProviderError(ErrorKind.INTERNAL, "interrupted while sending")
            pipeline.end_attempt(attempt, Attempt.Outcome.RETRIED, interrupted, ambiguous=True)
        return
    if submitting and not resendable and pipeline.uses_callbacks(generation):
        waiting = f"Interrupted while sending to {generation.account.name}: waiting for it to report the job"
        until = f"{waiting}, until {timezone.localtime(generation.deadline):%H:%M}"
        generation.advance(
            Status.SUBMITTING, Status.SUBMITTING, claim="", due_at=generation.deadline, waiting_reason=until
        )
        return
    why = (
        "interrupted while submitting; not sent again: "
        + ("interrupted too often" if resendable else "the provider may have started the job, and cannot tell us")
        if submitting
        else "the worker process waiting for the provider's answer stopped; the call cannot be resumed"
    )
    generation.fail(generation.status, ProviderError(ErrorKind.INTERNAL, "the worker process stopped"), note=f"({why})")


def step(generation: Generation, permit: Permit) -> None:
    """One piece of work on a claimed job: submit it, or read its status."""
    if generation.status == Status.QUEUED:
        pipeline.submit(generation, permit)
    elif generation.status in Generation.FOLLOWED:
        pipeline.follow(generation, permit)


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


# --- recovering -------------------------------------------------------------------


def reconcile() -> dict[str, int]:
    """The safety net, every minute: end jobs past their deadline (a synchronous call lost
    with its process ends here), and make sure a sweep runs while anything is due, and the
    renderer while any image waits for its renditions (a lost renderer's lease lapses).
    A job the provider finished is never expired: its finishing retries or fails on its own."""
    now = timezone.now()
    deadline = now - timedelta(seconds=settings.JOB_DEADLINE_SECONDS)
    # A vendor's batch (half price, within a day) has its own, longer deadline.
    vendor_deadline = now - timedelta(seconds=settings.VENDOR_BATCH_DEADLINE_SECONDS)
    late = (Q(created_at__lt=deadline) & ~Q(lane=Generation.VENDOR)) | Q(
        created_at__lt=vendor_deadline, lane=Generation.VENDOR
    )
    unfinished = Generation.ACTIVE - {Status.FINISHING}
    expired = sum(
        generation.fail(unfinished, ProviderError(ErrorKind.EXPIRED, "no result in time"))
        for generation in Generation.objects.filter(late, status__in=unfinished)
    )
    if pollable().exists():
        pipeline.wake_sweeper()
    if finishing.waiting_for_renditions().exists():
        finishing.wake_renderer()
    return {"expired": expired}


def wake_when_lease_lapses() -> None:
    """For a starting worker: once a dead sweep's lease has lapsed, start a new one."""
    for _ in range(3):
        lease = Lease.objects.filter(name=SWEEP).first()
        if lease is None or lease.expires_at <= timezone.now():
            break
        time.sleep(min(LEASE_SECONDS, (lease.expires_at - timezone.now()).total_seconds()) + 0.1)
    if pollable().exists():
        pipeline.wake_sweeper()
    connection.close()
