"""View helpers shared by every package's pages. Neutral ground: it imports nothing of nanoweb,
so that the studio, boards, credits and providers can all use it without importing each other."""

from __future__ import annotations

from functools import wraps
from typing import IO, Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django_htmx.middleware import HtmxDetails


class Request(HttpRequest):
    """What the middleware makes of a request here: a signed-in user, and htmx's details."""

    user: User
    htmx: HtmxDetails


def staff_required(view):
    """Staff only; everyone else (signed in, by the middleware) gets 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def back_to(request: HttpRequest, fallback: Any) -> HttpResponse:
    """After a form without htmx: back to the page it was on (`next`, if it is ours), or `fallback`."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback)


def zip_response(archive: IO[bytes], *, count: int, name: str = "") -> FileResponse:
    """A ZIP of `count` results to download, named after `name` and the time."""
    filename = "-".join(filter(None, ["nanoweb", slugify(name), f"{timezone.localtime():%Y%m%d-%H%M}"]))
    return FileResponse(
        archive, as_attachment=True, filename=f"{filename}-{count}-images.zip", content_type="application/zip"
    )
