"""The studio's jobs against the credit ledger: the check that they agree. It lives above the
ledger because it needs the jobs' states; the ledger itself never imports the studio."""

from __future__ import annotations

from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Coalesce

from nanoweb.credits.ledger import ZERO, Kind
from nanoweb.credits.models import LedgerEntry
from nanoweb.studio.models import Generation


def ledger_problems() -> list[str]:
    """Every way the ledger could be wrong, as sentences; empty when it balances."""
    problems = []
    per_job = (
        LedgerEntry.objects.filter(generation__isnull=False)
        .values("generation", "generation__status", "generation__price")
        .annotate(
            reserved=Coalesce(Sum("amount", filter=Q(kind=Kind.RESERVE)), Value(ZERO)),
            closed=Coalesce(Sum("amount", filter=Q(kind__in=[Kind.SETTLE, Kind.RELEASE])), Value(ZERO)),
            charged=Coalesce(Sum("amount", filter=Q(kind=Kind.SETTLE)), Value(ZERO)),
            strangers=Count("id", filter=~Q(user=F("generation__owner"))),
        )
    )
    for row in per_job:
        job, status, price = row["generation"], row["generation__status"], row["generation__price"]
        held = row["reserved"] - row["closed"]
        if status not in Generation.TERMINAL and held != price:
            problems.append(f"job {job} ({status}): holds {held} but its price is {price}")
        if status in Generation.TERMINAL and held:
            problems.append(f"job {job} ({status}): reserved {row['reserved']} ≠ settled + released {row['closed']}")
        if status == Generation.Status.SUCCEEDED and row["charged"] != price:
            problems.append(f"job {job} was charged {row['charged']} but its price is {price}")
        if status != Generation.Status.SUCCEEDED and row["charged"]:
            problems.append(f"job {job} ({status}) was charged without succeeding")
        if row["strangers"]:
            problems.append(f"job {job} has ledger lines of someone other than its owner")
    unreserved = Generation.objects.filter(price__isnull=False).exclude(ledger__kind=Kind.RESERVE)
    problems += [f"job {pk} has a price but no reservation" for pk in unreserved.values_list("pk", flat=True)]
    return problems
