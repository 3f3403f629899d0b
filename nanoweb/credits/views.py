from __future__ import annotations

import csv

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from nanoweb.credits import ledger, review
from nanoweb.credits.forms import BudgetForm, RangeForm
from nanoweb.credits.models import Budget
from nanoweb.providers import status
from nanoweb.providers.models import ProviderAccount
from nanoweb.web import staff_required


def chosen_range(request: HttpRequest) -> tuple[RangeForm, review.Range]:
    """The range in the URL, or this month; a bad range is reported on the form."""
    default = review.presets(timezone.localdate())["This month"]
    form = RangeForm(request.GET if "start" in request.GET else {"start": default.start, "end": default.end})
    if form.is_valid():
        return form, review.Range(form.cleaned_data["start"], form.cleaned_data["end"])
    return form, default


@require_GET
@staff_required
def credit_review(request: HttpRequest) -> HttpResponse:
    form, period = chosen_range(request)
    accounts = ProviderAccount.objects.order_by("name")
    people = review.by_person(period)
    for row in people:
        row["budget_form"] = BudgetForm(instance=row["budget"])
    return render(request, "credits/review.html", {
        "form": form,
        "period": period,
        "presets": review.presets(timezone.localdate()),
        "totals": review.totals(period),
        "people": people,
        "providers": review.by_provider(period),
        "models": review.by_model(period),
        "daily": review.daily(period),
        "balances": [(account, status.balance(account)) for account in accounts],
        "team": ledger.team_standing(),
    })  # fmt: skip


@require_POST
@staff_required
def edit_budget(request: HttpRequest, user_id: int) -> HttpResponse:
    """Change a person's budget in place (the review page's row)."""
    user = get_object_or_404(get_user_model(), pk=user_id)
    budget = Budget.objects.filter(user=user).first() or Budget(user=user)
    form = BudgetForm(request.POST, instance=budget)
    if form.is_valid():
        form.save()
        form = BudgetForm(instance=form.instance)
    standing = ledger.standing(user)
    # 200 even with errors: htmx swaps the cell, and the message stands next to the field.
    row = {"user": user, "left": standing.left, "period_label": standing.period_label}
    return render(request, "credits/review.html#budget_cell", {"row": row, "budget_form": form})


class Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@staff_required
def ledger_csv(request: HttpRequest) -> StreamingHttpResponse:
    form, period = chosen_range(request)
    rows = review.lines(period).select_related("user", "created_by", "generation__account").order_by("created_at", "id")
    writer = csv.writer(Echo())
    header = ["time", "person", "kind", "amount", "unit", "generation", "provider", "model", "resolution",
              "provider_cost", "reason", "by"]  # fmt: skip

    def stream():
        yield writer.writerow(header)
        for line in rows.iterator(chunk_size=2000):
            job = line.generation
            yield writer.writerow([
                line.created_at.isoformat(), line.user.get_username(), line.kind, line.amount, settings.CREDITS_UNIT,
                job.pk if job else "", job.account.name if job else "", job.model if job else "",
                job.resolution if job else "", line.provider_cost, line.reason,
                line.created_by.get_username() if line.created_by else "",
            ])  # fmt: skip

    filename = f"nanoweb-ledger-{period.start}-{period.end}.csv"
    return StreamingHttpResponse(
        stream(), content_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
