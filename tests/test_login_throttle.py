"""Password guessing is cut short: after LOGIN_FAILURE_LIMIT wrong passwords for one username
from one address, that pair is locked out for LOGIN_LOCKOUT_MINUTES, with a clear page, until
the cool-off passes or staff unlock it in the admin."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

LOGIN = "/login"
ADMIN_LOGIN = "/admin/login/"


def sign_in(client: Client, url: str, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_documented_threshold_is_five_failures_and_fifteen_minutes(settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)


@pytest.mark.parametrize("url, user_fixture", [(LOGIN, "owner"), (ADMIN_LOGIN, "staff")])
def test_guessing_a_password_locks_that_username_out_from_that_address(client, request, url, user_fixture):
    user = request.getfixturevalue(user_fixture)
    answers = [sign_in(client, url, user.username, f"guess-{n}").status_code for n in range(30)]
    assert answers[:4] == [200] * 4, "the first wrong passwords get the form again"
    assert set(answers[4:]) == {429}, "from the fifth failure on, the sign-in is refused"

    locked = sign_in(client, url, user.username, PASSWORD)
    assert locked.status_code == 429 and not signed_in(client), "even the right password waits"
    assert "Too many failed sign-ins" in locked.text and user.username in locked.text
    assert "15 minutes" in locked.text and "ask an admin" in locked.text
    assert 'href="/static/css/app.css"' in locked.text, "a page of the studio, not raw text"


def test_the_lockout_is_per_username_and_address(client, owner, teammate):
    for n in range(5):
        sign_in(client, LOGIN, owner.username, f"guess-{n}")
    assert sign_in(Client(), LOGIN, teammate.username, PASSWORD).status_code == 302, "another person, same address"
    other_address = Client()
    assert sign_in(other_address, LOGIN, owner.username, PASSWORD, address="198.51.100.4").status_code == 302
    assert signed_in(other_address), "the same person from another address"


def test_a_successful_sign_in_forgets_earlier_failures(client, owner):
    for n in range(4):
        sign_in(client, LOGIN, owner.username, f"guess-{n}")
    assert sign_in(client, LOGIN, owner.username, PASSWORD).status_code == 302
    client.logout()
    for n in range(4):
        assert sign_in(client, LOGIN, owner.username, f"again-{n}").status_code == 200


def test_the_lockout_ends_after_the_cool_off(client, owner, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    for n in range(5):
        sign_in(client, LOGIN, owner.username, f"guess-{n}")
    assert sign_in(client, LOGIN, owner.username, PASSWORD).status_code == 429
    time.sleep(1.1)
    assert sign_in(client, LOGIN, owner.username, PASSWORD).status_code == 302


def test_staff_unlock_a_person_in_the_admin(owner, admin_client):
    from axes.models import AccessAttempt

    client = Client()
    for n in range(5):
        sign_in(client, LOGIN, owner.username, f"guess-{n}")
    attempts = admin_client.get(reverse("admin:axes_accessattempt_changelist") + "?locked_out=yes")
    assert attempts.status_code == 200 and owner.username in attempts.text
    attempt = AccessAttempt.objects.get(username=owner.username)
    unlocked = admin_client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert unlocked.status_code == 302
    assert sign_in(client, LOGIN, owner.username, PASSWORD).status_code == 302


def test_tests_still_sign_in_directly(client, owner):
    """The suite signs in a lot: the test client's login() and force_login() bypass nothing and stay fast."""
    assert client.login(username=owner.username, password=PASSWORD)
    assert client.get(reverse("studio")).status_code == 200
    client.logout()
    assert not client.login(username=owner.username, password="wrong")


def test_guessing_one_username_from_many_addresses_locks_it_out_everywhere(client, owner, settings):
    assert settings.LOGIN_USERNAME_FAILURE_LIMIT == 20
    answers = [
        sign_in(Client(), LOGIN, owner.username, f"guess-{n}", address=f"198.51.100.{n // 4}").status_code
        for n in range(40)
    ]
    assert answers.count(200) == 20, "four guesses from each address, until twenty in all"
    refused = sign_in(Client(), LOGIN, owner.username, PASSWORD, address="192.0.2.50")
    assert refused.status_code == 429
    assert f"signing in as {owner.username} is paused for 15 minutes" in refused.text
    assert sign_in(Client(), LOGIN, "tom", "wrong", address="192.0.2.50").status_code == 200, "others unaffected"
