"""Staff pages about the provider accounts: their health, and resuming a paused one."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from nanoweb.providers import health, status, vendor_models
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


@require_GET
@staff_required
def vendor_model_lists(request: HttpRequest) -> HttpResponse:
    accounts = vendor_models.listing_accounts()
    rows = [(account, vendor_models.differences(account)) for account in accounts]
    return render(request, "providers/vendor_models.html", {"rows": rows})


@require_POST
@staff_required
def check_vendor_models(request: HttpRequest) -> HttpResponse:
    read = vendor_models.check_all()
    messages.success(request, f"Read the model lists of {read} account(s).")
    return redirect("vendor_model_lists")


@require_POST
@staff_required
def add_vendor_model(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(ProviderAccount, pk=pk)
    try:
        row = vendor_models.add_row(account, request.POST.get("model_id", ""))
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        state = "enabled" if row.enabled else "disabled until you check its options and price"
        messages.success(request, f"Added {row.model_id} to {account.name} as {row.name} ({state}).")
    return redirect("vendor_model_lists")


def paused_accounts(request: HttpRequest) -> dict[str, object]:
    """Context for every page: the paused accounts, for the staff banner (nothing for members)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_staff:
        return {}
    return {"paused_accounts": ProviderAccount.objects.filter(paused_at__isnull=False, enabled=True)}
