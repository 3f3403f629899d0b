"""How each account has been doing: a query over its attempts (and their jobs), cached briefly.

Every create is an Attempt row; an accepted attempt follows its job to the end. So per
account and window: the jobs it was tried for, how many of those it served to a result
(success rate = succeeded / ended there, a job moved on to another account counting as
not served; a job the model made no image for because of its prompt is the prompt's failure,
not the account's, and is left out), the time members waited for a result (job created → image stored, by
resolution), failures by kind, the last error and the rate-limit hits. Beside them, whatever
the window, each account's budget use over the last hour: every request nanoweb sent it
(creates and status reads, as the vendor counts them) and every 429 it answered, against its
hourly limit where it has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

from nanoweb.providers.base import ErrorKind
from nanoweb.providers.models import Attempt, ProviderAccount

WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
CACHE_SECONDS = 30
# Routing tries an account whose last few creates all failed for reasons of its own after the others.
STRUGGLING_AFTER = 3
STRUGGLING_WINDOW = timedelta(minutes=10)
ACCOUNT_TROUBLE = {
    ErrorKind.AUTH, ErrorKind.OUT_OF_CREDIT, ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE,
    ErrorKind.UNKNOWN_MODEL, ErrorKind.BLOCKED_ADDRESS, ErrorKind.MALFORMED,
}  # fmt: skip
# The model made no image because of what it was asked: not the account's doing.
PROMPT_FAILURES = {ErrorKind.GENERATION_FAILED, ErrorKind.CONTENT_BLOCKED}


@dataclass
class LastError:
    at: datetime
    kind: str
    message: str


@dataclass
class AccountHealth:
    account: ProviderAccount
    jobs: int = 0
    ended: int = 0
    succeeded: int = 0
    rate_limited: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    # resolution → (jobs, p50 seconds, p95 seconds)
    times: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    last_error: LastError | None = None
    requests_last_hour: int = 0
    refused_last_hour: int = 0

    @property
    def hour_allowance(self) -> int | None:
        """Requests the account may send in an hour (its hourly limit, else 60 times its minute's)."""
        limits = self.account.limits
        return limits.per_hour or (limits.per_minute * 60 if limits.per_minute else None)

    @property
    def budget_used(self) -> int | None:
        """Percent of the hour's allowance spent."""
        allowance = self.hour_allowance
        return round(100 * self.requests_last_hour / allowance) if allowance else None

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.ended if self.ended else None


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


def figures(window: str, now: datetime | None = None) -> list[AccountHealth]:
    """Every account's figures over the last hour, day or week (uncached)."""
    since = (now or timezone.now()) - WINDOWS[window]
    attempts = Attempt.objects.filter(started_at__gte=since)
    found = {account.pk: AccountHealth(account) for account in ProviderAccount.objects.order_by("name")}
    for health in found.values():
        health.requests_last_hour, health.refused_last_hour = health.account.requests_since(3600)
    counts = attempts.values("account").annotate(
        jobs=Count("generation", distinct=True),
        ended=Count("id", filter=Q(outcome__in=Attempt.FINAL) & ~Q(error_kind__in=PROMPT_FAILURES)),
        succeeded=Count("id", filter=Q(outcome=Attempt.Outcome.SUCCEEDED)),
        rate_limited=Count("id", filter=Q(error_kind=ErrorKind.RATE_LIMITED)),
    )
    for row in counts:
        health = found[row["account"]]
        health.jobs, health.ended, health.succeeded = row["jobs"], row["ended"], row["succeeded"]
        health.rate_limited = row["rate_limited"]
    failures = attempts.exclude(error_kind="").values("account", "error_kind").annotate(n=Count("id"))
    for failure in failures.order_by("account", "-n", "error_kind"):
        found[failure["account"]].failures[failure["error_kind"]] = failure["n"]
    waits: dict[tuple[int, str], list[float]] = {}
    served = attempts.filter(outcome=Attempt.Outcome.SUCCEEDED, generation__finished_at__isnull=False)
    for account, resolution, created, finished in served.values_list(
        "account", "generation__resolution", "generation__created_at", "generation__finished_at"
    ):
        if finished:
            waits.setdefault((account, resolution), []).append((finished - created).total_seconds())
    for (account, resolution), seconds in sorted(waits.items()):
        seconds.sort()
        found[account].times[resolution or "—"] = (len(seconds), percentile(seconds, 0.5), percentile(seconds, 0.95))
    for health in found.values():
        if health.failures:
            last = attempts.filter(account=health.account).exclude(error_kind="").order_by("-started_at", "-id")[0]
            health.last_error = LastError(
                last.ended_at or last.started_at, last.error_kind, last.message or last.detail
            )
    return list(found.values())


def cached_figures(window: str) -> list[AccountHealth]:
    key = f"provider-health:{window}"
    value = cache.get(key)
    if value is None:
        value = figures(window)
        cache.set(key, value, CACHE_SECONDS)
    return value


def struggling(accounts: set[int]) -> set[int]:
    """Accounts whose last few creates (in the last minutes) all failed for reasons of their own."""
    since = timezone.now() - STRUGGLING_WINDOW
    found = set()
    for account in accounts:
        recent = list(
            Attempt.objects.filter(account=account, started_at__gte=since)
            .exclude(outcome=Attempt.Outcome.SENDING)
            .order_by("-started_at", "-id")
            .values_list("error_kind", flat=True)[:STRUGGLING_AFTER]
        )
        if len(recent) == STRUGGLING_AFTER and all(kind in ACCOUNT_TROUBLE for kind in recent):
            found.add(account)
    return found
