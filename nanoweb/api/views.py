"""A member's tokens and webhooks (staff see and revoke everyone's)."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.db.models import Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from nanoweb.api.forms import TokenForm, WebhookForm
from nanoweb.api.models import ApiToken, WebhookDelivery, WebhookEndpoint
from nanoweb.web import Request

DELIVERIES_SHOWN = 20


def revocable_token(request: Request, pk: int) -> ApiToken:
    """One's own token, or anyone's for staff; 404 otherwise."""
    token = get_object_or_404(ApiToken, pk=pk)
    if token.user_id != request.user.pk and not request.user.is_staff:
        raise Http404
    return token


def own_webhook(request: Request, pk: int) -> WebhookEndpoint:
    """One's own endpoint, or any team endpoint for staff; 404 otherwise."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    if endpoint.owner_id != request.user.pk and not (request.user.is_staff and endpoint.team):
        raise Http404
    return endpoint


@require_http_methods(["GET", "POST"])
def tokens(request: Request) -> HttpResponse:
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        day = form.cleaned_data["expires_on"]
        expires_at = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min)) if day else None
        token, secret = ApiToken.issue(
            user=request.user, name=form.cleaned_data["name"], scope=form.cleaned_data["scope"], expires_at=expires_at
        )
        created = (token, secret)
        form = TokenForm()
    mine = ApiToken.objects.filter(user=request.user)
    everyone = ApiToken.objects.exclude(user=request.user).select_related("user") if request.user.is_staff else None
    response = render(
        request, "api/tokens.html", {"form": form, "created": created, "tokens": mine, "everyone": everyone},
        status=400 if request.method == "POST" and form.errors else 200,
    )  # fmt: skip
    response["Cache-Control"] = "no-store"  # the new token is on it, once
    return response


@require_POST
def revoke_token(request: Request, pk: int) -> HttpResponse:
    token = revocable_token(request, pk)
    if token.revoke():
        messages.success(request, f"The token {token.name} is revoked: it no longer works.")
    return redirect("api_tokens")


@require_http_methods(["GET", "POST"])
def webhooks(request: Request) -> HttpResponse:
    form = WebhookForm(request.POST or None, user=request.user)
    created = None
    if request.method == "POST" and form.is_valid():
        created = form.save()
        form = WebhookForm(user=request.user)
    shown = WebhookEndpoint.objects.filter(owner=request.user)
    if request.user.is_staff:
        shown = WebhookEndpoint.objects.filter(owner=request.user) | WebhookEndpoint.objects.filter(team=True)
    latest = WebhookDelivery.objects.order_by("-created_at", "-id")
    endpoints = [
        (endpoint, list(endpoint.deliveries.all())[:DELIVERIES_SHOWN])
        for endpoint in shown.select_related("owner").prefetch_related(Prefetch("deliveries", latest))
    ]
    response = render(
        request, "api/webhooks.html", {"form": form, "created": created, "endpoints": endpoints},
        status=400 if request.method == "POST" and form.errors else 200,
    )  # fmt: skip
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def delete_webhook(request: Request, pk: int) -> HttpResponse:
    endpoint = own_webhook(request, pk)
    endpoint.delete()
    messages.success(request, f"Events are no longer sent to {endpoint.url}.")
    return redirect("api_webhooks")
