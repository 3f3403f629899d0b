"""The JSON API, /api/v1/ (django-ninja: the OpenAPI schema comes from these typed signatures).

Every call needs a personal token (`Authorization: Bearer nw_…`); creating and canceling also need
its generate scope. What a token may see is what its owner sees in the pages (the same access
helpers). Every refusal is JSON, `{"code": …, "message": …, "fields": {…}}`, with a stable code:

    401 token_missing, token_invalid, token_revoked, token_expired
    403 insufficient_scope
    404 not_found             (also what is not one's own to see: no existence leak)
    409 already_ended, no_account (no account serves the model with these options any more)
    402 over_budget           (the person's or the team's budget for the period)
    413 too_large             (a JSON body over DATA_UPLOAD_MAX_MEMORY_SIZE: send large references as multipart)
    422 invalid               (field errors as the studio form gives them), malformed (not JSON),
                              idempotency_key_reused (the key was used for another request)
    429 rate_limited          (API_RATE_LIMIT per token and minute; Retry-After says when)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import date
from typing import Any, cast

from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadedfile import UploadedFile as DjangoUpload
from django.db import IntegrityError, transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, QueryDict
from django.utils.datastructures import MultiValueDict
from ninja import File, Form, NinjaAPI, Query, Schema, UploadedFile
from ninja.errors import AuthenticationError, HttpError, ValidationError

from nanoweb.api.auth import ApiError, TokenAuth, require_generate
from nanoweb.api.models import IdempotencyKey
from nanoweb.api.schemas import CreatedJobs, ErrorOut, JobList, JobOut, job_out
from nanoweb.credits import ledger
from nanoweb.studio import feed
from nanoweb.studio.forms import AUTOMATIC, GenerationForm
from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation
from nanoweb.studio.views import generation_for, visible_generation
from nanoweb.web import Request

api = NinjaAPI(
    title="nanoweb API",
    version="1",
    description=__doc__ or "",
    auth=TokenAuth(),
    urls_namespace="api",
    docs_url="/docs",
)

REFUSALS: dict[int | str, Any] = {code: ErrorOut for code in (401, 403, 404, 429)}
CREATE_REFUSALS: dict[int | str, Any] = {**REFUSALS, 402: ErrorOut, 409: ErrorOut, 413: ErrorOut, 422: ErrorOut}
FIELD_NAMES = {"routing": "account", "__all__": "non_field"}


def refusal(request: HttpRequest, status: int, code: str, message: str, **extra: Any) -> HttpResponse:
    response = api.create_response(request, {"code": code, "message": message, **extra}, status=status)
    response["Cache-Control"] = "no-store"
    return response


@api.exception_handler(ApiError)
def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    response = refusal(request, exc.status, exc.code, exc.message, **({"fields": exc.fields} if exc.fields else {}))
    for name, value in exc.headers.items():
        response[name] = value
    return response


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return refusal(request, 401, "token_missing", "Send a personal API token: Authorization: Bearer <token>.")


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return refusal(request, 404, "not_found", "No such job, or not one this token may see.")


@api.exception_handler(RequestDataTooBig)
def too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return refusal(request, 413, "too_large", "The request body is too large: send large images as multipart uploads.")


@api.exception_handler(HttpError)
def malformed(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own refusals: a body it cannot parse (400), said as the others are."""
    if exc.status_code == 400:
        return refusal(request, 422, "malformed", f"The request body cannot be read: {exc}.")
    return refusal(request, exc.status_code, "refused", str(exc))


@api.exception_handler(ValidationError)
def invalid_request(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields: dict[str, list[str]] = {}
    for error in exc.errors:
        location = [str(part) for part in error.get("loc", ()) if part not in {"body", "query", "form", "payload"}]
        fields.setdefault(".".join(location) or "non_field", []).append(str(error.get("msg", "invalid")))
    return refusal(request, 422, "invalid", "The request is not valid.", fields=fields)


def user_request(request: HttpRequest) -> Request:
    """The token's owner is `request.user` (set by TokenAuth), as the pages' helpers expect."""
    return cast(Request, request)


class JobIn(Schema):
    prompt: str
    model: str
    account: int | None = None  # a provider account's id; None routes automatically
    aspect_ratio: str = ""
    resolution: str = ""
    output_format: str = ""
    google_search: bool = False
    count: int = 1  # variations of one submission, 1–4
    reference_results: list[int] = []  # earlier results, by image id (a job's `images[].id`)
    reference_images: list[str] = []  # uploads, base64 (PNG, JPEG or WebP)


class JobForm(Schema):
    prompt: str
    model: str
    account: int | None = None
    aspect_ratio: str = ""
    resolution: str = ""
    output_format: str = ""
    google_search: bool = False
    count: int = 1
    reference_results: list[int] = []


def form_for(request: HttpRequest, fields: JobForm | JobIn, uploads: list[DjangoUpload]) -> GenerationForm:
    data = QueryDict(mutable=True)
    data.update({
        "prompt": fields.prompt, "model": fields.model,
        "routing": AUTOMATIC if fields.account is None else str(fields.account),
        "aspect_ratio": fields.aspect_ratio, "resolution": fields.resolution, "output_format": fields.output_format,
        "google_search": "on" if fields.google_search else "", "count": str(fields.count),
    })  # fmt: skip
    data.setlist("reference_results", [str(pk) for pk in fields.reference_results])
    form = GenerationForm(data, MultiValueDict({"reference_files": uploads}), user=request.user)
    for name in ("aspect_ratio", "resolution"):  # left out: what the studio form starts with for the model
        if not data[name]:
            data[name] = form.fields[name].initial or ""
    return form


def fingerprint(fields: JobForm | JobIn, uploads: list[DjangoUpload]) -> str:
    described = {**fields.model_dump(exclude={"reference_images"}), "uploads": []}
    for upload in uploads:
        described["uploads"].append(hashlib.sha256(upload.read()).hexdigest())
        upload.seek(0)
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def replay(request: HttpRequest, key: str, print_: str) -> HttpResponse | None:
    """The first create's answer for a key used before (its jobs as they are now), or None."""
    earlier = IdempotencyKey.objects.filter(user=user_request(request).user, key=key).first()
    if earlier is None:
        return None
    if earlier.fingerprint != print_:
        raise ApiError(422, "idempotency_key_reused", "This Idempotency-Key was used for a different request.")
    jobs = Generation.objects.filter(pk__in=earlier.jobs).select_related("owner", "account").order_by("pk")
    response = api.create_response(request, {"jobs": [job_out(job) for job in jobs]}, status=201)
    response["Idempotent-Replayed"] = "true"
    return response


def create(request: HttpRequest, fields: JobForm | JobIn, uploads: list[DjangoUpload]) -> HttpResponse:
    """Both creates: the studio form's validation, routing and budget, as one transaction."""
    require_generate(request)
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 200:
        raise ApiError(
            422, "invalid", "The Idempotency-Key is too long.", fields={"Idempotency-Key": ["At most 200 characters."]}
        )
    print_ = fingerprint(fields, uploads)
    if key and (earlier := replay(request, key, print_)):
        return earlier
    form = form_for(request, fields, uploads)
    if not form.is_valid():
        names = {**FIELD_NAMES, **({"reference_files": "reference_images"} if isinstance(fields, JobIn) else {})}
        errors = {names.get(name, name): list(messages) for name, messages in form.errors.items()}
        raise ApiError(422, "invalid", "The request is not valid: see fields.", fields=errors)
    try:
        with transaction.atomic():
            if key:
                record = IdempotencyKey.objects.create(user=user_request(request).user, key=key, fingerprint=print_)
            jobs = pipeline.start(owner=request.user, spec=form.job_spec())
            if key:
                IdempotencyKey.objects.filter(pk=record.pk).update(jobs=[job.pk for job in jobs])
    except IntegrityError:  # the same key's create committed meanwhile
        if key and (earlier := replay(request, key, print_)):
            return earlier
        raise
    except ledger.OverBudget as exc:
        raise ApiError(402, "over_budget", str(exc)) from exc
    except pipeline.NoAccount as exc:
        raise ApiError(409, "no_account", str(exc)) from exc
    return api.create_response(request, {"jobs": [job_out(job) for job in jobs]}, status=201)


@api.post("/jobs", response={201: CreatedJobs, **CREATE_REFUSALS}, url_name="jobs_create", tags=["jobs"])
def create_job(request: HttpRequest, payload: JobIn) -> HttpResponse:
    """Create a job (or `count` variations). Send `Idempotency-Key` to make a retry safe: the same
    key answers the first create's jobs and charges nothing more. References as base64 here, or
    as files with `POST /jobs/upload`."""
    uploads: list[DjangoUpload] = []
    for number, encoded in enumerate(payload.reference_images):
        try:
            data = base64.b64decode(encoded.partition("base64,")[2] or encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                422, "invalid", "A reference image is not valid base64.",
                fields={"reference_images": [f"Image {number + 1} is not valid base64."]},
            ) from None  # fmt: skip
        uploads.append(SimpleUploadedFile(f"reference-{number + 1}", data))
    return create(request, payload, uploads)


@api.post("/jobs/upload", response={201: CreatedJobs, **CREATE_REFUSALS}, url_name="jobs_upload", tags=["jobs"])
def create_job_with_files(
    request: HttpRequest, fields: Form[JobForm], reference_files: File[list[UploadedFile] | None] = None
) -> HttpResponse:
    """Create a job from a multipart form: the same fields, references as `reference_files`."""
    return create(request, fields, list(reference_files or []))


class ListFilters(Schema):
    """The gallery's filters (as in its URL)."""

    view: str | None = None  # "mine", or "team" (the default: everything this token's owner may see)
    q: str | None = None
    person: str | None = None  # a username
    provider: int | None = None
    model: str | None = None
    status: str | None = None
    since: date | None = None
    until: date | None = None
    stars: int | None = None  # my rating, at least
    order: str | None = None  # "", "newest" or "stars"
    edits: bool | None = None
    before: str | None = None  # the `next` cursor of the previous page


@api.get("/jobs", response={200: JobList, **REFUSALS, 422: ErrorOut}, url_name="jobs", tags=["jobs"])
def list_jobs(request: HttpRequest, filters: Query[ListFilters]) -> HttpResponse:
    """One's jobs (`view=mine`) or the team's history, with the gallery's filters and search, 30 a page."""
    data = {name: str(value) for name, value in filters.model_dump().items() if value not in (None, False)}
    chosen = feed.FeedFilters(data)
    if not chosen.is_valid():
        fields = {name: list(messages) for name, messages in chosen.errors.items()}
        raise ApiError(422, "invalid", "These filters are not valid.", fields=fields)
    jobs, cursor = feed.page(chosen, request.user)
    return api.create_response(request, {"jobs": [job_out(job) for job in jobs], "next": cursor}, status=200)


@api.get("/jobs/{job_id}", response={200: JobOut, **REFUSALS}, url_name="job", tags=["jobs"])
def read_job(request: HttpRequest, job_id: int) -> dict:
    return job_out(visible_generation(user_request(request), job_id))


ORIGINAL = {
    200: {
        "description": "The original file",
        "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@api.get(
    "/jobs/{job_id}/original", response=REFUSALS, url_name="job_original", tags=["jobs"],
    openapi_extra={"responses": ORIGINAL},
)  # fmt: skip
def download_original(request: HttpRequest, job_id: int, index: int = 0) -> FileResponse:
    """The provider's original file, byte for byte (of a job's `index`-th image)."""
    job = visible_generation(user_request(request), job_id)
    image = job.images.filter(index=index).first()
    if image is None:
        raise ApiError(404, "not_found", "This job has no image at that index (yet).")
    response = FileResponse(
        image.original.open("rb"), as_attachment=True, filename=image.download_name, content_type=image.mime_type
    )
    response["Cache-Control"] = "private, no-store"
    return response


@api.post(
    "/jobs/{job_id}/cancel", response={200: JobOut, **REFUSALS, 409: ErrorOut}, url_name="job_cancel", tags=["jobs"]
)
def cancel_job(request: HttpRequest, job_id: int) -> dict:
    """Stop a running job and refund it (its owner, or staff)."""
    require_generate(request)
    job = generation_for(user_request(request), job_id, "cancel")
    if not pipeline.cancel(job):
        job.refresh_from_db()
        raise ApiError(409, "already_ended", f"This job has ended ({job.status}); nothing to cancel.")
    return job_out(job)
