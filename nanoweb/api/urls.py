from __future__ import annotations

from django.urls import path

from nanoweb.api import views
from nanoweb.api.api import api


def api_urls() -> list:
    """The API's operations take a token, not a session (LoginRequiredMiddleware lets them through;
    each checks its token). Its schema and docs page stay for signed-in members."""
    patterns, app, namespace = api.urls
    for pattern in patterns:
        if pattern.name not in {"openapi-json", "openapi-view"}:
            pattern.callback.login_required = False
    return patterns, app, namespace


urlpatterns = [
    path("api/v1/", api_urls()),
    path("account/tokens", views.tokens, name="api_tokens"),
    path("account/tokens/<int:pk>/revoke", views.revoke_token, name="revoke_token"),
    path("account/webhooks", views.webhooks, name="api_webhooks"),
    path("account/webhooks/<int:pk>/delete", views.delete_webhook, name="delete_webhook"),
]
