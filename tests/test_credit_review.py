"""The staff credit review: figures from a known ledger, editing budgets, CSV, and who may see it."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from nanoweb.credits import ledger
from nanoweb.credits.models import Budget, LedgerEntry
from nanoweb.providers.base import ErrorKind, ProviderError
from nanoweb.studio.models import Generation
from tests.conftest import start_job, succeed

Status = Generation.Status


@pytest.fixture
def known_ledger(owner, teammate, staff, make_account):
    """olivia: two 2K images on crun (0.202) and one failure; tom: one Gemini 512 image (0.045) and a grant."""
    crun, gemini = make_account("crun"), make_account("gemini")
    for _ in range(2):
        [job] = start_job(owner, crun, "google/nano-banana-2", resolution="2K")
        succeed(job, provider_cost="9")
    [failed] = start_job(owner, crun, "google/nano-banana-2", resolution="4K")
    Generation.objects.filter(pk=failed.pk).update(provider_cost="2")
    failed.refresh_from_db()
    failed.fail(Status.QUEUED, ProviderError(ErrorKind.GENERATION_FAILED, "x"))
    [job] = start_job(teammate, gemini, "gemini-3.1-flash-image", resolution="512")
    succeed(job)
    ledger.grant(user=teammate, amount=Decimal("5"), reason="demo day", by=staff)
    # Last month's charge must not show up in this month's figures.
    [old] = start_job(teammate, crun, "google/nano-banana-2", "old", resolution="1K")
    succeed(old)
    LedgerEntry.objects.filter(generation=old).update(created_at=timezone.now() - timedelta(days=70))
    return crun, gemini


def test_the_review_shows_the_figures_of_the_known_ledger(client, staff, known_ledger):
    client.force_login(staff)
    response = client.get(reverse("credit_review"))
    assert response.status_code == 200
    context = response.context

    assert context["totals"]["charged"] == Decimal("0.247")  # 0.101 + 0.101 + 0.045
    assert context["totals"]["refunded"] == Decimal("0.151")
    assert (context["totals"]["images"], context["totals"]["failures"]) == (3, 1)
    assert context["totals"]["granted"] == Decimal("5")
    assert context["totals"]["failed_provider_cost"] == Decimal("2")
    people = {row["user"].username: row for row in context["people"]}
    assert (people["olivia"]["charged"], people["olivia"]["failures"]) == (Decimal("0.202"), 1)
    assert people["olivia"]["left"] == Decimal("20") - Decimal("0.202")
    assert people["tom"]["charged"] == Decimal("0.045")
    providers = {row["generation__account__name"]: row for row in context["providers"]}
    assert providers["crun (sim)"]["charged"] == Decimal("0.202")
    assert providers["crun (sim)"]["provider_cost"] == Decimal("18")
    models = {(r["generation__model"], r["generation__resolution"]): r["charged"] for r in context["models"]}
    assert models == {("google/nano-banana-2", "2K"): Decimal("0.202"), ("google/nano-banana-2", "4K"): Decimal("0"),
                      ("gemini-3.1-flash-image", "512"): Decimal("0.045")}  # fmt: skip
    today = [day for day in context["daily"] if day["day"] == timezone.localdate()]
    assert today[0]["total"] == Decimal("0.247") and today[0]["share"] == 1.0
    assert 'id="total-charged">0.247 USD<' in response.text


def test_a_chosen_range_changes_the_figures_and_bad_ranges_are_explained(client, staff, known_ledger):
    client.force_login(staff)
    old_day = timezone.localdate() - timedelta(days=70)
    older = client.get(reverse("credit_review"), {"start": old_day, "end": old_day})
    assert older.context["totals"]["charged"] == Decimal("0.067")

    backwards = client.get(reverse("credit_review"), {"start": "2026-05-10", "end": "2026-05-01"})
    assert "The end must not be before the start." in backwards.text
    nonsense = client.get(reverse("credit_review"), {"start": "soon", "end": "2026-05-01"})
    assert "Enter a valid date." in nonsense.text


def test_the_csv_export_lists_the_ledger_of_the_range(client, staff, known_ledger):
    client.force_login(staff)
    response = client.get(reverse("ledger_csv"))
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    kinds = [row["kind"] for row in rows]
    assert kinds.count("reserve") == 4 and kinds.count("settle") == 3 and kinds.count("release") == 1
    assert kinds.count("grant") == 1
    grant = next(row for row in rows if row["kind"] == "grant")
    assert (grant["person"], grant["amount"], grant["reason"], grant["by"]) == ("tom", "5.0000", "demo day", "sam")
    settle = next(row for row in rows if row["kind"] == "settle" and row["provider"] == "crun (sim)")
    assert (settle["model"], settle["resolution"], settle["provider_cost"], settle["unit"]) == (
        "google/nano-banana-2",
        "2K",
        "9",
        "USD",
    )


def test_drilling_down_to_a_person_lists_their_generations(client, staff, known_ledger):
    client.force_login(staff)
    olivia = Generation.objects.filter(owner__username="olivia").first().owner
    page = client.get(reverse("person_generations", args=[olivia.pk]))
    assert page.status_code == 200
    assert len(page.context["generations"]) == 3
    assert "refunded" in page.text


def test_budgets_are_edited_in_place(client, staff, owner):
    client.force_login(staff)
    url = reverse("edit_budget", args=[owner.pk])

    saved = client.post(url, {"amount": "12.5", "period": "week"}, HTTP_HX_REQUEST="true")
    assert saved.status_code == 200 and "12.5" in saved.text and "left this week" in saved.text
    assert (Budget.objects.get(user=owner).amount, Budget.objects.get(user=owner).period) == (Decimal("12.5"), "week")

    for data, message in [
        ({"amount": "-1", "period": "week"}, "A budget cannot be negative."),
        ({"amount": "99999999", "period": "week"}, "That budget is not plausible"),
        ({"amount": "5", "period": "fortnight"}, "Choose day, week, month or none."),
        ({"amount": "lots", "period": "week"}, "Enter a number."),
    ]:
        refused = client.post(url, data, HTTP_HX_REQUEST="true")
        assert message in refused.text, data
    assert Budget.objects.get(user=owner).amount == Decimal("12.5"), "nothing stored on a bad value"


@pytest.mark.parametrize("name", ["credit_review", "ledger_csv"])
def test_members_get_403_and_anonymous_users_are_sent_to_sign_in(client, owner, name):
    assert client.get(reverse(name))["Location"].startswith(reverse("login"))
    client.force_login(owner)
    assert client.get(reverse(name)).status_code == 403


def test_members_cannot_see_drill_downs_or_edit_budgets(client, owner, teammate):
    client.force_login(owner)
    assert client.get(reverse("person_generations", args=[teammate.pk])).status_code == 403
    assert client.post(reverse("edit_budget", args=[owner.pk]), {"amount": "1000", "period": "none"}).status_code == 403
    assert not Budget.objects.exists()


def test_the_studio_shows_the_live_cost_and_what_is_left(owner_client, owner, crun_account):
    Budget.objects.create(user=owner, amount=Decimal("3"), period="week")
    page = owner_client.get(reverse("studio"))
    assert "This submission: <strong>0.067 USD</strong>" in page.text
    assert "You have 3.00 USD left this week" in page.text

    options = owner_client.get(
        reverse("form_options"), {"routing": crun_account.pk, "model": "Nano Banana 2", "resolution": "4K"}
    )
    assert "This submission: <strong>0.151 USD</strong>" in options.text


@pytest.mark.parametrize(
    "data, message",
    [
        ({"kind": "grant", "amount": "5", "reason": ""}, "Say why the credit is given or corrected."),
        ({"kind": "grant", "amount": "-5", "reason": "oops"}, "A grant must be positive"),
        ({"kind": "adjustment", "amount": "0", "reason": "nothing"}, "An amount of zero changes nothing."),
        ({"kind": "settle", "amount": "5", "reason": "forged charge"}, "Select a valid choice."),
    ],
)
def test_staff_grants_need_a_reason_and_a_sensible_amount(admin_client, owner, data, message):
    response = admin_client.post(reverse("admin:credits_ledgerentry_add"), {"user": owner.pk, **data})
    assert message in response.text
    assert not LedgerEntry.objects.exists()


def test_a_grant_in_the_admin_is_recorded_with_who_gave_it(admin_client, owner):
    admin_client.post(
        reverse("admin:credits_ledgerentry_add"),
        {"user": owner.pk, "kind": "grant", "amount": "3", "reason": "hackathon"},
    )
    grant = LedgerEntry.objects.get()
    assert (grant.kind, grant.amount, grant.created_by.username) == ("grant", Decimal("3"), "root")
