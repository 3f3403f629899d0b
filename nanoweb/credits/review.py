"""The figures of the staff credit review, all read from the ledger for one date range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.db.models import Count, DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from nanoweb.credits import ledger
from nanoweb.credits.models import Budget, LedgerEntry

Kind = LedgerEntry.Kind
ZERO = Decimal(0)
MONEY = DecimalField(max_digits=20, decimal_places=4)


@dataclass(frozen=True)
class Range:
    start: date
    end: date  # inclusive

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        tz = timezone.get_current_timezone()
        return (
            datetime.combine(self.start, time.min, tzinfo=tz),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=tz),
        )

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def presets(today: date) -> dict[str, Range]:
    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    return {
        "This month": Range(first, today),
        "Last month": Range(last_month_end.replace(day=1), last_month_end),
        "Last 7 days": Range(today - timedelta(days=6), today),
        "Last 30 days": Range(today - timedelta(days=29), today),
    }


def lines(period: Range) -> QuerySet:
    start, end = period.bounds
    return LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)


def _money(kind: str):
    return Coalesce(Sum("amount", filter=Q(kind=kind)), Value(ZERO), output_field=MONEY)


FIGURES = {
    "charged": _money(Kind.SETTLE),
    "refunded": _money(Kind.RELEASE),
    "granted": _money(Kind.GRANT),
    "images": Count("id", filter=Q(kind=Kind.SETTLE)),
    "failures": Count("id", filter=Q(kind=Kind.RELEASE)),
}


def totals(period: Range) -> dict:
    figures = lines(period).aggregate(**FIGURES)
    failed_cost = provider_cost_sum(
        lines(period).filter(kind=Kind.RELEASE).values_list("generation__provider_cost", flat=True)
    )
    return {**figures, "failed_provider_cost": failed_cost}


def by_person(period: Range) -> list[dict]:
    rows = {row["user"]: row for row in lines(period).values("user").annotate(**FIGURES)}
    budgets = {b.user_id: b for b in Budget.objects.all()}
    people = []
    for user in get_user_model().objects.filter(is_active=True).order_by("username"):
        row = rows.get(user.pk, {"charged": ZERO, "refunded": ZERO, "granted": ZERO, "images": 0, "failures": 0})
        standing = ledger.standing(user)
        budget = budgets.get(user.pk) or ledger.budget_of(user)
        people.append(
            {**row, "user": user, "budget": budget, "left": standing.left, "period_label": standing.period_label}
        )
    return sorted(people, key=lambda row: (-row["charged"], row["user"].username))


def by_provider(period: Range) -> list[dict]:
    rows = list(
        lines(period)
        .filter(generation__isnull=False)
        .values("generation__account", "generation__account__name", "generation__account__kind")
        .annotate(**FIGURES)
        .order_by("-charged")
    )
    reported: dict[int, list[str]] = {}
    for account, cost in lines(period).filter(kind=Kind.SETTLE).values_list("generation__account", "provider_cost"):
        reported.setdefault(account, []).append(cost)
    for row in rows:
        row["provider_cost"] = provider_cost_sum(reported.get(row["generation__account"], []))
    return rows


def by_model(period: Range) -> list[dict]:
    return list(
        lines(period)
        .filter(generation__isnull=False)
        .values("generation__account__name", "generation__model", "generation__resolution")
        .annotate(**FIGURES)
        .order_by("-charged")
    )


def daily(period: Range) -> list[dict]:
    spent = dict(
        lines(period)
        .filter(kind=Kind.SETTLE)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values_list("day")
        .annotate(total=Sum("amount"))
        .values_list("day", "total")
    )
    peak = max(spent.values(), default=ZERO) or Decimal(1)
    return [_bar(day, spent.get(day, ZERO), float(spent.get(day, ZERO) / peak)) for day in period.days]


def _bar(day, total: Decimal, share: float) -> dict:
    """A day of the chart: its total, and its bar in the chart's 100-unit-high SVG (as text, not localized)."""
    return {
        "day": day,
        "total": total,
        "share": share,
        "height": f"{share * 100:.2f}",
        "top": f"{100 - share * 100:.2f}",
    }


def provider_cost_sum(values) -> Decimal | None:
    """Providers report cost as text in their own unit; sum what is numeric, None if nothing is."""
    total, found = ZERO, False
    for value in values:
        try:
            total += Decimal(value)
            found = True
        except (InvalidOperation, TypeError):
            continue
    return total if found else None
