"""Credits that always balance: reserve on submit, charge on success, refund otherwise."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from nanoweb.credits import ledger
from nanoweb.credits.models import Budget, LedgerEntry, TeamBudget
from nanoweb.providers.base import ErrorKind, ProviderError
from nanoweb.studio import audit
from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation
from tests.conftest import start_job, succeed

Kind = LedgerEntry.Kind
Status = Generation.Status


def start(owner, account, **options):
    [generation] = start_job(owner, account, "google/nano-banana-2", "a kite", **options)
    return generation


def kinds(generation):
    return list(generation.ledger.order_by("id").values_list("kind", "amount"))


def test_a_submission_reserves_its_price_and_success_charges_it(owner, crun_account):
    generation = start(owner, crun_account, resolution="2K")
    assert generation.price == Decimal("0.101")
    assert kinds(generation) == [(Kind.RESERVE, Decimal("0.101"))]

    succeed(generation, provider_cost="9")

    assert kinds(generation) == [(Kind.RESERVE, Decimal("0.101")), (Kind.SETTLE, Decimal("0.101"))]
    assert generation.ledger.get(kind=Kind.SETTLE).provider_cost == "9"
    assert ledger.standing(owner).spent == Decimal("0.101")
    assert audit.ledger_problems() == []


@pytest.mark.parametrize("end", ["fail", "cancel", "expire"])
def test_failure_cancel_and_expiry_refund_the_reservation(owner, crun_account, end):
    generation = start(owner, crun_account, resolution="4K")
    if end == "fail":
        generation.fail(Status.QUEUED, ProviderError(ErrorKind.GENERATION_FAILED, "x"))
    elif end == "cancel":
        assert pipeline.cancel(generation)
    else:
        generation.fail(Status.QUEUED, ProviderError(ErrorKind.EXPIRED, "late"))

    assert [k for k, _ in kinds(generation)] == [Kind.RESERVE, Kind.RELEASE]
    assert ledger.standing(owner).spent == 0
    assert audit.ledger_problems() == []


def test_a_second_terminal_transition_moves_no_money(owner, crun_account):
    generation = start(owner, crun_account)
    assert succeed(generation)
    assert not generation.advance(Status.QUEUED, Status.FAILED)
    assert not pipeline.cancel(generation)
    assert [k for k, _ in kinds(generation)] == [Kind.RESERVE, Kind.SETTLE]


def test_prices_come_from_the_catalogue_row_which_starts_at_the_list_prices(owner, crun_account):
    row = crun_account.catalogue.get(model_id="google/nano-banana-2")
    assert (row.price("4K"), row.price(""), crun_account.catalogue.get(model_id="google/nano-banana").price("")) == (
        Decimal("0.151"), Decimal("0.067"), Decimal("0.039"),
    )  # fmt: skip
    row.prices = {**row.prices, "1K": "0.05"}
    row.save()
    assert start(owner, crun_account, resolution="1K").price == Decimal("0.05")


def test_over_budget_is_refused_with_a_clear_message_and_nothing_stored(owner_client, owner, crun_account):
    Budget.objects.create(user=owner, amount=Decimal("0.10"), period="day")
    data = {"prompt": "a kite", "routing": crun_account.pk, "model": "Nano Banana 2", "resolution": "4K"}

    response = owner_client.post(reverse("generate"), data, HTTP_HX_REQUEST="true")

    assert "This image costs 0.151 USD, but you have 0.10 USD left today." in response.text
    assert Generation.objects.count() == 0 and LedgerEntry.objects.count() == 0
    assert (
        owner_client.post(reverse("generate"), {**data, "resolution": "1K"}, HTTP_HX_REQUEST="true").status_code == 201
    )


def test_a_team_budget_caps_everyone_together(owner, teammate, crun_account):
    TeamBudget.objects.create(amount=Decimal("0.15"), period="month")
    start(owner, crun_account)  # 0.067
    start(teammate, crun_account)  # 0.134 in all
    with pytest.raises(ledger.OverBudget, match="the team has 0.016 USD left this month"):
        start(owner, crun_account)


def test_grants_raise_what_is_left_in_the_period(owner, staff, crun_account):
    Budget.objects.create(user=owner, amount=Decimal("0"), period="month")
    with pytest.raises(ledger.OverBudget):
        start(owner, crun_account)
    ledger.grant(user=owner, amount=Decimal("1"), reason="launch week", by=staff)
    assert start(owner, crun_account).price == Decimal("0.067")
    assert ledger.standing(owner).left == Decimal("0.933")
    with pytest.raises(ValidationError, match="Say why"):
        ledger.grant(user=owner, amount=Decimal("1"), reason="  ", by=staff)


@pytest.mark.parametrize(
    "period, now, start",
    [
        ("day", datetime(2026, 3, 1, 0, 0, 1), datetime(2026, 3, 1)),
        ("day", datetime(2026, 2, 28, 23, 59, 59), datetime(2026, 2, 28)),
        ("week", datetime(2026, 11, 22, 23, 0), datetime(2026, 11, 16)),  # Sunday → Monday before
        ("week", datetime(2026, 11, 23, 0, 0), datetime(2026, 11, 23)),  # Monday
        ("month", datetime(2026, 12, 31, 23, 59), datetime(2026, 12, 1)),
        ("month", datetime(2027, 1, 1, 0, 0), datetime(2027, 1, 1)),
        ("none", datetime(2027, 1, 1, 0, 0), None),
    ],
)
def test_periods_start_at_the_boundary_in_the_team_time_zone(settings, period, now, start):
    settings.TIME_ZONE = "Europe/Berlin"
    berlin = ZoneInfo("Europe/Berlin")
    assert ledger.period_start(period, now.replace(tzinfo=berlin)) == (start and start.replace(tzinfo=berlin))


def test_spending_before_the_period_no_longer_counts(owner, crun_account):
    Budget.objects.create(user=owner, amount=Decimal("0.10"), period="day")
    earlier = start(owner, crun_account)
    succeed(earlier)
    assert ledger.standing(owner).left == Decimal("0.033")
    yesterday = ledger.period_start("day") - ledger.timedelta(hours=1)
    Generation.objects.filter(pk=earlier.pk).update(created_at=yesterday)  # a job counts in its own period
    LedgerEntry.objects.filter(generation=earlier).update(created_at=yesterday)
    assert ledger.standing(owner).left == Decimal("0.10")


def test_the_check_command_reports_an_unbalanced_job(owner, crun_account):
    generation = start(owner, crun_account)
    call_command("check_ledger")
    Generation.objects.filter(pk=generation.pk).update(status=Status.FAILED)  # bypasses advance(): no refund
    with pytest.raises(Exception, match="1 problem"):
        call_command("check_ledger")


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["submit", "succeed", "fail", "cancel", "grant"]),
            st.integers(0, 2),
            st.sampled_from(["1K", "2K", "4K"]),
        ),
        max_size=25,
    ),
    budget=st.decimals(min_value=0, max_value=1, places=2),
)
def test_the_ledger_balances_after_any_sequence_of_operations(django_user_model, make_account, staff, steps, budget):
    with transaction.atomic():  # each example starts from the same empty ledger
        run_operations(django_user_model, make_account, staff, steps, budget)
        transaction.set_rollback(True)


def run_operations(django_user_model, make_account, staff, steps, budget):
    account = make_account("crun")
    people = [django_user_model.objects.create_user(f"person{n}") for n in range(3)]
    for person in people:
        Budget.objects.create(user=person, amount=budget, period="month")
    granted = {person.pk: Decimal(0) for person in people}
    for action, who, resolution in steps:
        person = people[who]
        open_jobs = list(Generation.objects.filter(owner=person, status=Status.QUEUED))
        if action == "submit":
            try:
                start(person, account, resolution=resolution)
            except ledger.OverBudget:
                pass
        elif action == "grant":
            ledger.grant(user=person, amount=Decimal("0.1"), reason="test", by=staff)
            granted[person.pk] += Decimal("0.1")
        elif open_jobs and action == "succeed":
            succeed(open_jobs[0])
        elif open_jobs and action == "fail":
            open_jobs[0].fail(Status.QUEUED, ProviderError(ErrorKind.UNAVAILABLE, "down"))
        elif open_jobs and action == "cancel":
            pipeline.cancel(open_jobs[0])

        assert audit.ledger_problems() == []
        for member in people:
            kept = Generation.objects.filter(owner=member).exclude(status__in=[Status.FAILED, Status.CANCELED])
            spent = sum((g.price for g in kept), Decimal(0))
            standing = ledger.standing(member)
            assert standing.spent == spent
            assert standing.left == budget + granted[member.pk] - spent
            assert standing.left >= 0, "nobody is ever allowed past their budget"
