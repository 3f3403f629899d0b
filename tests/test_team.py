"""The Team page: staff run the team from the studio: members and their budgets, grants with a
reason (ledger lines), new members with an invitation link, deactivation, and who did what."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from nanoweb.credits import ledger
from nanoweb.credits.models import LedgerEntry
from tests.conftest import PASSWORD


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_the_team_page_is_for_staff_only(client, owner):
    client.force_login(owner)
    assert client.get(reverse("team")).status_code == 403
    assert client.post(reverse("grant_credit", args=[owner.pk]), {"amount": "5", "reason": "me"}).status_code == 403
    assert client.post(reverse("add_member"), {"username": "eve"}).status_code == 403
    assert not LedgerEntry.objects.exists()


def test_a_grant_with_its_reason_lands_in_the_ledger_and_in_what_is_left(staff_client, staff, owner):
    before = ledger.standing(owner).left
    page = staff_client.get(reverse("team"))
    assert f"{before:.2f} USD left" in page.text

    response = staff_client.post(reverse("grant_credit", args=[owner.pk]), {"amount": "7.50", "reason": "a pitch deck"})
    assert response.status_code == 302
    [grant] = LedgerEntry.objects.filter(kind="grant")
    assert (grant.user, grant.amount, grant.reason, grant.created_by) == (owner, Decimal("7.5"), "a pitch deck", staff)
    page = staff_client.get(reverse("team"))
    assert f"{before + Decimal('7.5'):.2f} USD left" in page.text
    assert f"Grant of 7.50 USD to {owner.username}: a pitch deck" in page.text


@pytest.mark.parametrize(
    "data, message",
    [
        ({"amount": "5", "reason": ""}, "Say why the credit is given."),
        ({"amount": "-5", "reason": "oops"}, "A grant must be positive."),
        ({"amount": "lots", "reason": "oops"}, "Give an amount such as 5 or 2.50."),
        ({"amount": "99999999", "reason": "oops"}, "That amount is not plausible."),
    ],
)
def test_a_bad_grant_is_explained_and_nothing_is_stored(staff_client, owner, data, message):
    response = staff_client.post(reverse("grant_credit", args=[owner.pk]), data)
    assert response.status_code == 400 and message in response.text
    assert not LedgerEntry.objects.exists()


def test_a_new_member_chooses_a_password_through_a_link_that_works_once(staff_client, django_user_model):
    from django.test import Client

    client = Client()
    response = staff_client.post(reverse("add_member"), {"username": "nora", "email": "nora@example.com"}, follow=True)
    assert response.redirect_chain == [(reverse("team"), 302)] and "nora is on the team." in response.text
    assert "nora is on the team." not in staff_client.get(reverse("team")).text, "the link is shown once"
    link = re.search(r'<code class="invite-link">http://testserver(/welcome/[^<]+)</code>', response.text).group(1)
    nora = django_user_model.objects.get(username="nora")
    assert not nora.has_usable_password() and not nora.is_staff
    assert staff_client.post(reverse("add_member"), {"username": "NORA"}).status_code == 400, "one username once"

    form = client.get(link, follow=True)  # Django's view moves the token into the session first
    assert "Choose your password" in form.text
    chosen = client.post(
        form.redirect_chain[-1][0], {"new_password1": "a long new secret 42", "new_password2": "a long new secret 42"}
    )
    assert chosen.status_code == 302 and chosen.url == reverse("login")
    assert client.login(username="nora", password="a long new secret 42")
    client.logout()
    assert "This link no longer works" in client.get(link, follow=True).text

    history = staff_client.get(reverse("team")).text
    assert "nora: Added from the Team page." in history


def test_a_deactivated_member_cannot_sign_in_and_comes_back_when_reactivated(staff_client, staff, owner):
    from django.test import Client

    client = Client()
    assert staff_client.post(reverse("member_active", args=[owner.pk]), {"active": "0"}).status_code == 302
    owner.refresh_from_db()
    assert not owner.is_active
    assert not client.login(username=owner.username, password=PASSWORD)
    assert f"{owner.username}: Deactivated." in staff_client.get(reverse("team")).text
    assert staff_client.post(reverse("member_active", args=[staff.pk]), {"active": "0"}).status_code == 403, (
        "not oneself"
    )

    staff_client.post(reverse("member_active", args=[owner.pk]), {"active": "1"})
    assert client.login(username=owner.username, password=PASSWORD)


@pytest.mark.browser
def test_staff_grant_budget_with_a_reason_on_the_team_page_and_the_ledger_shows_it(page, live_server, staff, owner):
    from tests.test_browser import sign_in

    sign_in(page, live_server, staff.username)
    page.wait_for_url(live_server.url + "/")
    page.get_by_role("link", name="Team").click()
    row = page.locator(f"#member-{owner.pk}")
    assert "20.00 USD left this month" in row.inner_text()
    row.get_by_label(f"Amount to grant to {owner.username}").fill("5")
    row.get_by_label(f"Reason for the grant to {owner.username}").fill("the spring campaign")
    row.get_by_role("button", name="Grant").click()
    page.wait_for_url("**/team#member-*")
    assert "25.00 USD left this month" in page.locator(f"#member-{owner.pk}").inner_text()
    assert f"Grant of 5.00 USD to {owner.username}: the spring campaign" in page.locator(".history").inner_text()

    csv = page.request.get(live_server.url + reverse("ledger_csv")).text()
    assert "the spring campaign" in csv


def test_a_budget_change_is_in_who_did_what(staff_client, owner):
    staff_client.post(reverse("edit_budget", args=[owner.pk]), {"amount": "12.5", "period": "week"})
    assert f"{owner.username}: Budget set to 12.50 USD per week." in staff_client.get(reverse("team")).text
