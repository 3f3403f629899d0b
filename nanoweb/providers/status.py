"""What staff see about an account: balance, how completion is detected, recent errors."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from nanoweb.providers.base import ProviderError
from nanoweb.providers.models import ProviderAccount

BALANCE_SECONDS = 60


def balance(account: ProviderAccount) -> str:
    """The vendor's balance, cached briefly; a failure is reported, never raised."""
    if not account.adapter_class.has_balance:
        return "no balance endpoint"
    key = f"provider-balance:{account.pk}:{account.base_url}"
    if (cached := cache.get(key)) is not None:
        return cached
    try:
        value = account.adapter().balance()
        text = "unknown" if value is None else value
    except ProviderError as error:
        text = f"unavailable: {error.message} ({error.detail[:120]})"
    cache.set(key, text, BALANCE_SECONDS)
    return text


def completion_mode(account: ProviderAccount) -> str:
    if account.adapter_class.synchronous:
        return "synchronous call (the answer is the image)"
    if not account.adapter_class.pushes_completion:
        return "polling (the provider has no callbacks)"
    if not settings.PUBLIC_BASE_URL:
        return "polling only: set PUBLIC_BASE_URL so the provider can call back"
    return f"callbacks to {settings.PUBLIC_BASE_URL}, polling as a safety net"


def recent_errors(account: ProviderAccount, hours: int = 24) -> dict[str, int]:
    """Failed generations on this account by error kind."""
    since = timezone.now() - timedelta(hours=hours)
    rows = (
        account.generation_set.filter(status="failed", finished_at__gte=since)
        .values("error_kind")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    return {row["error_kind"]: row["n"] for row in rows}
