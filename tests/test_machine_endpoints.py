"""The endpoints machines call are the only ones open without a session, and they live together."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from nanoweb import machine

pytestmark = pytest.mark.portable


def routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            assert isinstance(pattern, URLPattern)
            yield prefix + str(pattern.pattern), pattern.callback


def test_only_sign_in_and_the_machine_endpoints_are_open_without_a_session():
    open_views = {
        route: view for route, view in routes(get_resolver().url_patterns) if not getattr(view, "login_required", True)
    }
    machine_views = {pattern.callback for pattern in machine.urlpatterns}
    assert {route for route, view in open_views.items() if view in machine_views} == {
        "hooks/<str:token>",
        "refs/<str:token>",
        "healthz",
        "metrics",
        "favicon.ico",  # a redirect to the static icon, which is public anyway
    }
    # The API's operations take a personal token instead (nanoweb/api/auth.py; tests/test_api.py).
    api = {route for route in open_views if route.startswith("api/v1/")}
    assert api == {f"api/v1/{route}" for route in API_OPERATIONS}
    assert {route for route, view in open_views.items() if view not in machine_views} - api == {
        "login",
        "admin/login/",
        "sso/<slug:provider_id>/login",  # single sign-on: the button, and the provider's redirect back
        "sso/<slug:provider_id>/callback",
        "welcome/<uidb64>/<token>",  # a new member's invitation (a one-time token link: Django's password reset)
    }


API_OPERATIONS = [
    "jobs", "jobs/upload", "jobs/<job_id>", "jobs/<job_id>/original", "jobs/<job_id>/cancel",
    "batches", "batches/<batch_id>", "batches/<batch_id>/cancel",
]  # fmt: skip


def test_every_api_operation_refuses_a_call_without_a_token(client, db):
    for route in API_OPERATIONS:
        path = "/api/v1/" + route.replace("<job_id>", "1").replace("<batch_id>", "1")
        for method in (client.get, client.post):
            response = method(path)
            if response.status_code == 405:  # not this operation's method
                continue
            assert (response.status_code, response.json()["code"]) == (401, "token_missing"), (method, path)
