"""What staff see about an account: balance, how completion is detected, recent errors."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from nanoweb.providers.base import ProviderError
from nanoweb.providers.models import ProviderAccount

log = logging.getLogger(__name__)
BALANCE_SECONDS = 600  # read again after this; a schedule reads every account's every 10 minutes


def balance(account: ProviderAccount, *, max_age: float = BALANCE_SECONDS) -> str:
    """The vendor's balance as last read, read again when older than `max_age` seconds (and
    kept on the account); a failure is reported, never raised."""
    if not account.adapter_class.has_balance:
        return "no balance endpoint"
    checked = account.balance_checked_at
    if checked and (timezone.now() - checked).total_seconds() < max_age:
        return account.balance
    try:
        value = account.adapter().balance()
        text = "unknown" if value is None else value
    except ProviderError as error:
        log.warning("balance of %s not read: %s (%s)", account.name, error.message, error.detail)
        text = f"Could not read it: {error.message.rstrip('.')}."
    now = timezone.now()
    ProviderAccount.objects.filter(pk=account.pk).update(balance=text[:200], balance_checked_at=now)
    account.balance, account.balance_checked_at = text[:200], now
    return account.balance


def check_balances() -> dict[str, str]:
    """Every 10 minutes (a django-q schedule): read the balance of every account that has one."""
    return {account.name: balance(account, max_age=0) for account in ProviderAccount.objects.filter(enabled=True)
            if account.adapter_class.has_balance}  # fmt: skip


def completion_mode(account: ProviderAccount) -> str:
    if account.adapter_class.synchronous:
        return "synchronous call (the answer is the image)"
    if not account.adapter_class.pushes_completion:
        return "polling (the provider has no callbacks)"
    if not settings.PUBLIC_BASE_URL:
        return "polling only: set PUBLIC_BASE_URL so the provider can call back"
    return f"callbacks to {settings.PUBLIC_BASE_URL}, polling as a safety net"


def reference_mode(account: ProviderAccount) -> str:
    if not account.fetches_references:
        return "sent inline"
    if not settings.PUBLIC_BASE_URL:
        return "fetched by URL: set PUBLIC_BASE_URL, or jobs with references skip this account"
    return f"fetched by URL from {settings.PUBLIC_BASE_URL}"


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
