"""Endpoints for machines, not members: provider callbacks, the signed reference links providers
fetch, and the health check. None of them takes a session, so each states its own access rule
here, in one place:

- `/hooks/<token>`: a per-job unguessable token in the URL, and the vendor's signature where it
  signs. The body is never trusted: it only makes us read the job's status (or the task it
  names) with our own key.
- `/refs/<token>`: a signature that expires after REFERENCE_LINK_SECONDS; nothing else is served.
- `/healthz`: up or down for anyone (a load balancer); what is up or down only for staff or a
  caller with the HEALTH_TOKEN.
- `/metrics`: for staff, or a Prometheus scraper with the METRICS_TOKEN; 401 (403 for members) otherwise.
- `/api/v1/…`: a personal API token on every call (`nanoweb/api/auth.py`).

Every other URL is for signed-in members (LoginRequiredMiddleware), and each of those views
checks what the member may see (`studio.views.visible_generation` and friends).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from nanoweb.api import metrics
from nanoweb.studio import health, references
from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation


@csrf_exempt
@login_not_required
@require_POST
def provider_callback(request: HttpRequest, token: str) -> JsonResponse:
    """A provider says a job changed. A forged or replayed callback can make us look, never change a job.
    For a job whose create was cut off before the answer, it names the task we never heard of."""
    generation = Generation.objects.select_related("account").filter(callback_token=token).first()
    if generation is None:
        return JsonResponse({"ok": False, "error": "unknown job"}, status=404)
    adapter = generation.account.adapter()
    if not adapter.verify_callback(request.headers, request.body):
        return JsonResponse({"ok": False, "error": "bad signature"}, status=401)
    if generation.status == Generation.Status.SUBMITTING and not generation.provider_task_id:
        pipeline.adopt(generation, adapter.callback_task_id(request.body))
    elif not generation.is_terminal:
        pipeline.wake(generation)
    return JsonResponse({"ok": True})


@login_not_required
@require_GET
def reference_link(request: HttpRequest, token: str) -> FileResponse:
    """What providers fetch: a reference image behind a signed link that expires."""
    reference = references.from_token(token)
    if reference is None or reference.deleted:
        raise Http404("This link is not valid or has expired.")
    response = FileResponse(reference.open(), content_type=reference.mime_type)
    response["Cache-Control"] = "private, no-store"
    return response


@login_not_required
@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = health.checks()
    ok = all(check["ok"] for check in checks.values())
    details = checks if may_see_health_details(request) else {}
    return JsonResponse({"ok": ok, **details}, status=200 if ok else 503)


def may_see_health_details(request: HttpRequest) -> bool:
    """The database vendor, broker, queue depth and workers are for staff and monitoring."""
    return request.user.is_staff or bearer_is(request, settings.HEALTH_TOKEN)


def bearer_is(request: HttpRequest, expected: str) -> bool:
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(expected) and secrets.compare_digest(given.encode(), expected.encode())


@login_not_required
@require_GET
@never_cache
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    if not (request.user.is_staff or bearer_is(request, settings.METRICS_TOKEN)):
        signed_in = request.user.is_authenticated and "Authorization" not in request.headers
        response = HttpResponse(
            "Staff only, or a scraper with the METRICS_TOKEN.\n",
            status=403 if signed_in else 401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.page(), content_type=CONTENT_TYPE_LATEST)


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Pages without our icon link (the admin's) make the browser ask for /favicon.ico."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    path("hooks/<str:token>", provider_callback, name="provider_callback"),
    path("refs/<str:token>", reference_link, name="reference_link"),
    path("healthz", healthz, name="healthz"),
    path("metrics", prometheus_metrics, name="metrics"),
]
