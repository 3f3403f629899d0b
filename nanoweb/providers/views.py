"""Staff pages about the provider accounts: their health, and resuming a paused one."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from nanoweb.credits.views import staff_required
from nanoweb.providers import health, status
from nanoweb.providers.models import ProviderAccount


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
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(back)
    return redirect("provider_health")


def paused_accounts(request: HttpRequest) -> dict[str, object]:
    """Context for every page: the paused accounts, for the staff banner (nothing for members)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_staff:
        return {}
    return {"paused_accounts": ProviderAccount.objects.filter(paused_at__isnull=False, enabled=True)}
