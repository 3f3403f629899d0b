"""Signing in: django-axes counts failed sign-ins per username and address and locks the pair out."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses a sign-in over HTTP while its username and address are locked out.

    `authenticate()` without a request (the test client's `login()`, a shell) is not a guess
    over the network: it is left to the next backend instead of failing."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs
    ):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def locked_out(request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None):
    """The sign-in form again, saying why it is refused and for how long (status 429)."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    message = (
        f"Too many failed sign-ins: signing in as {username} from this address is paused for "
        f"{minutes} minute{'s' if minutes != 1 else ''}. Try again then, or ask an admin to unlock it."
    )
    form = AuthenticationForm(request, initial={"username": username})
    context = {"form": form, "locked_out": message, "next": request.GET.get("next", "")}
    return render(request, "registration/login.html", context, status=429)
