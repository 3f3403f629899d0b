from __future__ import annotations

import csv
from typing import cast

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.http import require_GET, require_POST

from nanoweb.credits import ledger, review
from nanoweb.credits.forms import BudgetForm, GrantForm, MemberForm, RangeForm
from nanoweb.credits.models import Budget, LedgerEntry
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
        budget = form.instance
        log_member(request, user, CHANGE, f"Budget set to {ledger.money(budget.amount)} {budget.get_period_display()}.")
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


def team_context(request: HttpRequest, **extra) -> dict:
    """The members with their budgets and what they have left (the ledger's figures), and
    who did what: grants and corrections from the ledger, member changes from the admin's log."""
    people = get_user_model().objects.order_by("-is_active", "username")
    members = []
    for person in people:
        budget = Budget.objects.filter(user=person).first() or Budget(user=person)
        standing = ledger.standing(person)
        row = {"user": person, "left": standing.left, "period_label": standing.period_label}
        members.append({"row": row, "budget_form": BudgetForm(instance=budget), "standing": standing})
    grants = LedgerEntry.objects.filter(kind__in=[LedgerEntry.Kind.GRANT, LedgerEntry.Kind.ADJUSTMENT])
    grants = grants.select_related("user", "created_by").order_by("-created_at")[:HISTORY]
    changes = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(get_user_model()))
    changes = changes.select_related("user").order_by("-action_time")[:HISTORY]
    history = sorted(
        [(entry.created_at, entry.created_by, f"{entry.get_kind_display()} of {ledger.money(entry.amount)} to "
          f"{entry.user.get_username()}: {entry.reason}") for entry in grants]
        + [(entry.action_time, entry.user, f"{entry.object_repr}: {entry.get_change_message()}") for entry in changes],
        key=lambda line: line[0], reverse=True,
    )[:HISTORY]  # fmt: skip
    return {"members": members, "history": history, "grant_form": GrantForm(), "member_form": MemberForm(), **extra}


HISTORY = 30


def log_member(request: HttpRequest, person, flag: int, message: str) -> None:
    LogEntry.objects.log_actions(cast(int, request.user.pk), [person], flag, message, single_object=True)


@require_GET
@staff_required
def team(request: HttpRequest) -> HttpResponse:
    # A member just added: their invitation link, shown once (a reload does not add them again).
    invite = request.session.pop("invite", None)
    invited = get_user_model().objects.filter(pk=invite["user"]).first() if invite else None
    days = round(settings.PASSWORD_RESET_TIMEOUT / 86400)
    extra = {"invited": invited, "invite": invite["link"], "invite_days": days} if invited and invite else {}
    return render(request, "credits/team.html", team_context(request, **extra))


@require_POST
@staff_required
def grant_credit(request: HttpRequest, user_id: int) -> HttpResponse:
    """Extra credit for one person this period, with a reason (a ledger line)."""
    person = get_object_or_404(get_user_model(), pk=user_id)
    form = GrantForm(request.POST)
    if form.is_valid():
        try:
            ledger.grant(user=person, amount=form.cleaned_data["amount"], reason=form.cleaned_data["reason"],
                         by=request.user)  # fmt: skip
        except ValidationError as refused:
            for field, messages in refused.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
    if form.errors:
        context = team_context(request, grant_form=form, grant_for=person)
        return render(request, "credits/team.html", context, status=400)
    return redirect(f"{reverse('team')}#member-{person.pk}")


@require_POST
@staff_required
def add_member(request: HttpRequest) -> HttpResponse:
    """A new member, without a password: staff pass on a link where they choose one."""
    form = MemberForm(request.POST)
    if not form.is_valid():
        return render(request, "credits/team.html", team_context(request, member_form=form), status=400)
    person = get_user_model()(
        username=form.cleaned_data["username"], email=form.cleaned_data["email"], is_staff=form.cleaned_data["is_staff"]
    )
    person.set_unusable_password()
    person.save()
    log_member(request, person, ADDITION, "Added from the Team page.")
    request.session["invite"] = {"user": person.pk, "link": invite_link(request, person)}
    return redirect("team")


def invite_link(request: HttpRequest, person) -> str:
    """Where a new member chooses a password: Django's password-reset link, good once, for
    PASSWORD_RESET_TIMEOUT (it stops working as soon as the password is set)."""
    uid = urlsafe_base64_encode(force_bytes(person.pk))
    path = reverse("welcome", args=[uid, default_token_generator.make_token(person)])
    return request.build_absolute_uri(path)


@require_POST
@staff_required
def member_active(request: HttpRequest, user_id: int) -> HttpResponse:
    """Deactivate a member (they can no longer sign in; their work and ledger stay), or bring them back."""
    person = get_object_or_404(get_user_model(), pk=user_id)
    active = request.POST.get("active") == "1"
    if person.pk == request.user.pk and not active:
        raise PermissionDenied("You cannot deactivate yourself.")
    # Signed-in sessions of an inactive member end at their next request (the auth backend refuses them).
    if get_user_model().objects.filter(pk=person.pk, is_active=not active).update(is_active=active):
        log_member(request, person, CHANGE, "Reactivated." if active else "Deactivated.")
    return redirect(f"{reverse('team')}#member-{person.pk}")
