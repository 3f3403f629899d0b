"""The one error view Django does not render with the request: a refused CSRF token.

403, 404 and 500 need no view of ours: Django's own handlers render `403.html`, `404.html` and
`500.html` (the last with no request, user or database, so it cannot fail in turn)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form whose CSRF token was refused (opened before signing in or out, or long ago): the
    styled page, with the person's navigation, rather than Django's bare one."""
    return render(request, "403_csrf.html", status=403)
