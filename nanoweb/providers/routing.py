"""Which accounts may serve a job, in the order to try them.

Members choose a model by its catalogue name ("Nano Banana 2"); every enabled account whose
catalogue row has that name, is enabled, not shut down and offers the chosen options may
serve it. Automatic routing orders them: healthy before struggling, then the staff's
priority, then price. A paused account is never chosen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from nanoweb.providers import health
from nanoweb.providers.models import CatalogueEntry, Options


@dataclass(frozen=True)
class Need:
    """What a job asks of an account."""

    model: str  # a catalogue name
    options: Options
    references: int = 0
    account: int | None = None  # a specific account; None routes automatically
    reference_bytes: int = 0


def offered() -> QuerySet[CatalogueEntry]:
    """Rows that may take new jobs today (paused accounts included: the form explains them)."""
    return (
        CatalogueEntry.objects.filter(enabled=True, account__enabled=True)
        .exclude(shutdown_on__lte=timezone.localdate())
        .select_related("account")
    )


def model_names() -> list[str]:
    """The models members can choose: served by at least one account that is not paused."""
    rows = offered().filter(account__paused_at__isnull=True)
    return sorted({row.name for row in rows if not row.incomplete})


def needs_public_address(row: CatalogueEntry, references: int) -> bool:
    """The provider would fetch the references from our public address, and none is set."""
    return bool(references) and row.account.fetches_references and not settings.PUBLIC_BASE_URL


def too_large_inline(row: CatalogueEntry, reference_bytes: int) -> bool:
    """The account takes references inline and these are more than one of its requests carries."""
    limit = row.account.adapter_class.max_inline_bytes
    return not row.account.fetches_references and limit is not None and reference_bytes > limit


def candidates(need: Need, *, exclude: Iterable[int] = ()) -> list[CatalogueEntry]:
    """The rows that can serve this need, best first (not the accounts in `exclude`)."""
    rows = offered().filter(name=need.model, account__paused_at__isnull=True).exclude(account__in=list(exclude))
    if need.account is not None:
        rows = rows.filter(account_id=need.account)
    fit = [
        row
        for row in rows
        if not row.unsupported(need.options, need.references)
        and not needs_public_address(row, need.references)
        and not row.incomplete
        and not too_large_inline(row, need.reference_bytes)
    ]
    struggling = health.struggling({row.account_id for row in fit})
    fit.sort(
        key=lambda row: (
            row.account_id in struggling,
            row.account.priority,
            row.price(need.options.resolution),
            row.account.name,
        )
    )
    return fit
