"""The endpoints machines call are the only ones open without a session, and they live together."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, get_resolver

from nanoweb import machine


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
        "favicon.ico",  # a redirect to the static icon, which is public anyway
    }
    assert {route for route, view in open_views.items() if view not in machine_views} == {"login", "admin/login/"}
