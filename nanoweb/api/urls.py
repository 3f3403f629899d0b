from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from nanoweb.api import views
from nanoweb.api.api import api


def api_urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """The API's operations take a token, not a session (LoginRequiredMiddleware lets them through;
    each checks its token). Its schema and docs page stay for signed-in members."""
    patterns, app, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern) and pattern.name not in {"openapi-json", "openapi-view", "api-root"}:
            setattr(pattern.callback, "login_required", False)  # noqa: B010 (what login_not_required sets)
    return patterns, app, namespace


urlpatterns = [
    path("api/v1/", api_urls()),
    path("account/tokens", views.tokens, name="api_tokens"),
    path("account/tokens/<int:pk>/revoke", views.revoke_token, name="revoke_token"),
    path("account/webhooks", views.webhooks, name="api_webhooks"),
    path("account/webhooks/<int:pk>/delete", views.delete_webhook, name="delete_webhook"),
]
