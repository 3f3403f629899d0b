"""Signing in: django-axes counts failed sign-ins per username and address and locks the pair out;
past LOGIN_USERNAME_FAILURE_LIMIT failures from all addresses together, the username is locked
out from everywhere for the same period."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses a sign-in over HTTP while its username and address are locked out.

    `authenticate()` without a request (the test client's `login()`, a shell) is not a guess
    over the network: it is left to the next backend instead of failing."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs
    ):
        if request is None:
            return None
        if username and failures_from_anywhere(username) >= settings.LOGIN_USERNAME_FAILURE_LIMIT:
            request.axes_locked_out = True  # type: ignore[attr-defined]
            request.locked_everywhere = True  # type: ignore[attr-defined]
            raise AxesBackendPermissionDenied("too many failed sign-ins for this username")
        return super().authenticate(request, username, password, **kwargs)


def failures_from_anywhere(username: str) -> int:
    """Wrong passwords for `username` within the lockout period, from all addresses together."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    found = AccessAttempt.objects.filter(username=username, attempt_time__gte=since)
    return found.aggregate(total=Sum("failures_since_start"))["total"] or 0


def locked_out(request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None):
    """The sign-in form again, saying why it is refused and for how long (status 429)."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    where = "" if getattr(request, "locked_everywhere", False) else " from this address"
    message = (
        f"Too many failed sign-ins: signing in as {username}{where} is paused for "
        f"{minutes} minute{'s' if minutes != 1 else ''}. Try again then, or ask an admin to unlock it."
    )
    form = AuthenticationForm(request, initial={"username": username})
    context = {"form": form, "locked_out": message, "next": request.GET.get("next", "")}
    return render(request, "registration/login.html", context, status=429)
