"""Staff pages about the provider accounts: their health, and resuming a paused one."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from nanoweb.providers import health, status
from nanoweb.providers.models import ProviderAccount
from nanoweb.web import back_to, staff_required


@require_GET
@staff_required
def provider_health(request: HttpRequest) -> HttpResponse:
    window = request.GET.get("window", "day")
    if window not in health.WINDOWS:
        window = "day"
    rows = [
        (row, status.balance(row.account), status.reference_mode(row.account)) for row in health.cached_figures(window)
    ]
    return render(request, "providers/health.html", {"rows": rows, "window": window, "windows": list(health.WINDOWS)})


@require_POST
@staff_required
def resume_account(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(ProviderAccount, pk=pk).resume()
    return back_to(request, "provider_health")


def paused_accounts(request: HttpRequest) -> dict[str, object]:
    """Context for every page: the paused accounts, for the staff banner (nothing for members)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_staff:
        return {}
    return {"paused_accounts": ProviderAccount.objects.filter(paused_at__isnull=False, enabled=True)}
