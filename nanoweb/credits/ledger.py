"""The credit ledger's workflows: reserve on submit, settle or release when a job ends,
what a person (or the team) has left this period.

The ledger sits below the studio: it knows a job only as the row its lines point to and as the
argument of its calls, and never imports the studio. The studio calls it (`advance` closes a job's
reservation with `close_job` in the transaction that makes the job final), and the check that
jobs and ledger agree, which needs the job's states, lives above it in `studio/audit.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from nanoweb.credits.models import Budget, LedgerEntry, Period, TeamBudget

Kind = LedgerEntry.Kind
ZERO = Decimal(0)
# How each kind of line moves what a person has left. A settle line confirms a reservation
# as a charge; the money already left the balance when it was reserved.
BALANCE_SIGN = {Kind.GRANT: 1, Kind.ADJUSTMENT: 1, Kind.RESERVE: -1, Kind.RELEASE: 1, Kind.SETTLE: 0}


class OverBudget(Exception):
    pass


def money(amount: Decimal) -> str:
    """0.067 → "0.067 USD", 20 → "20.00 USD": cents always, more digits only when they matter."""
    text = f"{amount:.4f}".rstrip("0")
    if len(text.partition(".")[2]) < 2:
        text = f"{amount:.2f}"
    return f"{text} {settings.CREDITS_UNIT}"


def period_start(period: str, now: datetime | None = None) -> datetime | None:
    """When the current period began, in the team's time zone; None for budgets that never reset."""
    today = timezone.localtime(now or timezone.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.DAY:
        return today
    if period == Period.WEEK:
        return today - timedelta(days=today.weekday())
    if period == Period.MONTH:
        return today.replace(day=1)
    return None


def sums(lines: QuerySet) -> dict[str, Decimal]:
    """The total of each kind of line, in one query (grouped by kind: a filtered sum per kind
    takes the ORM several times longer to build, and finishing a job asks it every time)."""
    totals = dict.fromkeys(Kind.values, ZERO)
    for kind, total in lines.order_by().values("kind").annotate(total=Sum("amount")).values_list("kind", "total"):
        totals[kind] = Decimal(total)
    return totals


@dataclass(frozen=True)
class Standing:
    """Where a person (or the team) stands in the current period."""

    allowance: Decimal
    period: str
    since: datetime | None
    granted: Decimal
    spent: Decimal  # reserved less released: charges, plus jobs still running

    @property
    def left(self) -> Decimal:
        return self.allowance + self.granted - self.spent

    @property
    def period_label(self) -> str:
        labels: dict[str, str] = {Period.DAY: "today", Period.WEEK: "this week", Period.MONTH: "this month"}
        return labels.get(self.period, "in total")


def in_period(lines: QuerySet, since: datetime) -> QuerySet:
    """The lines that count in the period begun at `since`. A job's lines count in the period
    of the job's submission: a reservation made before midnight and released after it gives
    back what it took from that period, not a gift to the new one. Other lines (grants,
    adjustments) count when they were made."""
    return lines.filter(Q(generation__isnull=True, created_at__gte=since) | Q(generation__created_at__gte=since))


def _standing(allowance: Decimal, period: str, lines: QuerySet) -> Standing:
    since = period_start(period)
    totals = sums(in_period(lines, since) if since else lines)
    return Standing(
        allowance=allowance,
        period=period,
        since=since,
        granted=totals[Kind.GRANT] + totals[Kind.ADJUSTMENT],
        spent=totals[Kind.RESERVE] - totals[Kind.RELEASE],
    )


def budget_of(user) -> Budget:
    """The person's budget, or the default one (unsaved) when staff set none."""
    return Budget.objects.filter(user=user).first() or Budget(
        user=user, amount=settings.DEFAULT_BUDGET, period=settings.DEFAULT_BUDGET_PERIOD
    )


def standing(user) -> Standing:
    budget = budget_of(user)
    return _standing(budget.amount, budget.period, LedgerEntry.objects.filter(user=user))


def available(user) -> Decimal:
    """What this person can still spend now: their own left, within the team's; never below 0."""
    team = team_standing()
    left = min(standing(user).left, team.left) if team is not None else standing(user).left
    return max(left, ZERO)


def team_standing() -> Standing | None:
    team = TeamBudget.objects.first()
    if team is None:
        return None
    # The team's grants are its people's grants: a grant to one person is not a team allowance.
    spent = _standing(team.amount, team.period, LedgerEntry.objects.all())
    return Standing(team.amount, team.period, spent.since, ZERO, spent.spent)


def refuse_unless_affordable(user, amount: Decimal, images: int = 1) -> None:
    """Raise OverBudget, quoting `amount` (a whole submission's total where there are several
    images), unless the person and the team can afford it. Locks the person's row (and the team
    budget's) first, so that parallel submits queue here and each sees the reservations of those
    before it. SQLite takes its one write lock at BEGIN (IMMEDIATE transactions), which
    serialises them the same way. Call inside a transaction."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    TeamBudget.objects.select_for_update().first()
    what = "This image costs" if images == 1 else f"These {images} images cost"
    mine = standing(user)
    if amount > mine.left:
        raise OverBudget(
            f"{what} {money(amount)}, but you have {money(max(mine.left, ZERO))} left {mine.period_label}. "
            "Ask an admin for a larger budget or a grant."
        )
    team = team_standing()
    if team is not None and amount > team.left:
        raise OverBudget(
            f"{what} {money(amount)}, but the team has {money(max(team.left, ZERO))} left "
            f"{team.period_label}. Ask an admin."
        )


VENDOR_BATCH_SHARE = Decimal("0.5")  # Google's Batch API costs half the list price


def vendor_batch_price(price: Decimal) -> Decimal:
    """What one image costs through a vendor's batch: half the catalogue price, to the ledger's
    4 decimals (rounded half up, so that the team never books less than the vendor charges)."""
    return (price * VENDOR_BATCH_SHARE).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def reserve(*, user, generation, amount: Decimal, reason: str = "") -> LedgerEntry:
    """Hold `amount` for the job, or raise OverBudget. Call inside a transaction."""
    refuse_unless_affordable(user, amount)
    return LedgerEntry.objects.create(user=user, kind=Kind.RESERVE, amount=amount, generation=generation, reason=reason)


def reprice(generation, price: Decimal, *, reason: str) -> None:
    """Hold `price` for a running job instead of its current price: it moves to an account that
    costs more (the difference is reserved within the budget, or OverBudget is raised and
    nothing changes) or less (the difference is refunded now). Call inside a transaction,
    and save the job's new price in the same one."""
    difference = price - generation.price
    if difference > 0:
        reserve(user=generation.owner, generation=generation, amount=difference, reason=reason)
    elif difference < 0:
        LedgerEntry.objects.create(
            user_id=generation.owner_id, kind=Kind.RELEASE, amount=-difference, generation=generation, reason=reason
        )


def close_job(generation, *, succeeded: bool) -> None:
    """Settle (success) or release (anything else) what is still held for a finished job.
    Runs in the transaction that made the job final, so the two cannot part."""
    totals = sums(LedgerEntry.objects.filter(generation=generation))
    outstanding = totals[Kind.RESERVE] - totals[Kind.SETTLE] - totals[Kind.RELEASE]
    if outstanding <= 0:
        return
    LedgerEntry.objects.create(
        user_id=generation.owner_id,
        kind=Kind.SETTLE if succeeded else Kind.RELEASE,
        amount=outstanding,
        generation=generation,
        provider_cost=generation.provider_cost if succeeded else "",
        reason="" if succeeded else (generation.error_message or generation.get_status_display()),
    )


def grant(*, user, amount: Decimal, reason: str, by) -> LedgerEntry:
    """Give a person extra credit for the current period (raises ValidationError if unfit)."""
    entry = LedgerEntry(user=user, kind=Kind.GRANT, amount=amount, reason=reason.strip(), created_by=by)
    entry.full_clean()
    entry.save()
    return entry
