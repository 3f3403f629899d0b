"""Production mode (DEBUG off): 403, 404, 500 and a refused CSRF token get the site's own pages,
with the stylesheet and a way back, not Django's bare text."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

pytestmark = pytest.mark.portable


@pytest.fixture(autouse=True)
def production(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = "tests.urls"  # the site, plus /broken, which fails


def assert_styled(response, status: int, heading: str) -> str:
    page = response.content.decode()
    assert response.status_code == status
    assert f">{heading}</h1>" in page
    assert 'rel="stylesheet"' in page and 'href="/"' in page, "the site's layout and a way back"
    return page


def test_a_missing_page_says_so_on_the_site_layout(owner_client):
    page = assert_styled(owner_client.get("/generations/999999"), 404, "There is nothing here")
    assert "Sign out" in page and reverse("gallery") in page


def test_a_member_opening_a_staff_page_is_told_it_is_for_staff(owner_client):
    page = assert_styled(owner_client.get(reverse("credit_review")), 403, "Your account may not open this page")
    assert "ask an admin of your team" in page


def test_a_server_error_shows_the_styled_page(db, owner):
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    assert_styled(client.get("/broken"), 500, "Something went wrong on our side")


def test_the_server_error_page_needs_no_database_or_user():
    """No `db` fixture: any query would fail this test."""
    response = server_error(RequestFactory().get("/"))
    page = assert_styled(response, 500, "Something went wrong on our side")
    assert "Sign out" not in page


def test_a_form_sent_without_its_csrf_token_gets_a_page_that_explains(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(reverse("prompt_library"), {"title": "t", "prompt": "p"})
    page = assert_styled(response, 403, "That form could not be sent")
    assert "nothing was charged" in page and "Sign out" in page
    assert not owner.savedprompt_set.exists()
