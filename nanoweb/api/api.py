"""The JSON API, /api/v1/ (django-ninja: the OpenAPI schema comes from these typed signatures).

Every call needs a personal token (`Authorization: Bearer nw_…`); creating and canceling also need
its generate scope. What a token may see is what its owner sees in the pages (the same access
helpers): the team's jobs and one's own private ones; one's own batches (staff: everyone's). Every refusal is JSON, `{"code": …, "message": …, "fields": {…}}`, with a stable code:

    401 token_missing, token_invalid, token_revoked, token_expired
    403 insufficient_scope
    404 not_found             (also what is not one's own to see: no existence leak)
    409 already_ended, no_account (no account serves the model with these options any more)
    402 over_budget           (the person's or the team's budget for the period)
    413 too_large             (a JSON body over DATA_UPLOAD_MAX_MEMORY_SIZE: send large references as multipart)
    422 invalid               (field errors as the studio form gives them), malformed (not JSON),
                              idempotency_key_reused (the key was used for another request),
        invalid_rows          (a batch's rows: `rows` lists each wrong row's line and errors)
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
from pydantic import ConfigDict

from nanoweb.api.auth import ApiError, TokenAuth, require_generate
from nanoweb.api.models import IdempotencyKey
from nanoweb.api.schemas import (
    BatchOut,
    CanceledBatch,
    CreatedJobs,
    ErrorOut,
    JobList,
    JobOut,
    RowsRefused,
    batch_out,
    job_out,
)
from nanoweb.batches import rows as batch_rows
from nanoweb.batches import service as batches
from nanoweb.batches.models import Batch
from nanoweb.batches.views import visible_batch
from nanoweb.boards.models import Board
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


def idempotency_key(request: HttpRequest) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 200:
        raise ApiError(
            422, "invalid", "The Idempotency-Key is too long.", fields={"Idempotency-Key": ["At most 200 characters."]}
        )
    return key


def earlier_create(request: HttpRequest, key: str, print_: str) -> IdempotencyKey | None:
    """The create made before with this key, or None; a key used for another request is refused."""
    earlier = IdempotencyKey.objects.filter(user=user_request(request).user, key=key).first()
    if earlier is not None and earlier.fingerprint != print_:
        raise ApiError(422, "idempotency_key_reused", "This Idempotency-Key was used for a different request.")
    return earlier


def replayed(response: HttpResponse) -> HttpResponse:
    response["Idempotent-Replayed"] = "true"
    return response


def replay(request: HttpRequest, key: str, print_: str) -> HttpResponse | None:
    """The first create's answer for a key used before (its jobs as they are now), or None."""
    earlier = earlier_create(request, key, print_)
    if earlier is None:
        return None
    jobs = Generation.objects.filter(pk__in=earlier.jobs).select_related("owner", "account").order_by("pk")
    return replayed(api.create_response(request, {"jobs": [job_out(job) for job in jobs]}, status=201))


def create(request: HttpRequest, fields: JobForm | JobIn, uploads: list[DjangoUpload]) -> HttpResponse:
    """Both creates: the studio form's validation, routing and budget, as one transaction."""
    require_generate(request)
    key = idempotency_key(request)
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


class RowIn(Schema):
    """One row of a batch, as a CSV row on the Batch page: what it leaves out, `defaults` give."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = ""
    model: str = ""  # a catalogue name, e.g. "Nano Banana 2"
    aspect_ratio: str = ""
    resolution: str = ""
    format: str = ""  # output format: "png", "jpeg", "webp" where the model offers it
    count: int = 1  # images of this prompt, 1–4
    board: str = ""  # the name of a board its owner can see (besides the batch's own board)
    references: list[int] = []  # earlier results, by image id


class DefaultsIn(Schema):
    """For rows that do not say; an empty option is the model's own default."""

    model_config = ConfigDict(extra="forbid")

    model: str = ""
    aspect_ratio: str = ""
    resolution: str = ""
    output_format: str = ""


class BatchIn(Schema):
    model_config = ConfigDict(extra="forbid")

    rows: list[RowIn]
    defaults: DefaultsIn = DefaultsIn()
    board: int | None = None  # a board's id: every result goes on it
    cheaper: bool = False  # through the vendor's Batch API where an account offers it: half the price, within a day
    title: str = ""  # the first prompt when left out


BATCH_REFUSALS: dict[int | str, Any] = {**CREATE_REFUSALS, 422: RowsRefused}


def row_values(row: RowIn) -> dict[str, str]:
    values = {
        "prompt": row.prompt.strip(), "model": row.model.strip(), "aspect_ratio": row.aspect_ratio.strip(),
        "resolution": row.resolution.strip(), "format": row.format.strip(), "count": str(row.count),
        "board": row.board.strip(), "references": " ".join(str(pk) for pk in row.references),
    }  # fmt: skip
    return {name: value for name, value in values.items() if value}


def batch_fingerprint(payload: BatchIn) -> str:
    described = {"batch": payload.model_dump()}  # never equal to a job create's
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def batch_for(request: HttpRequest, batch_id: int) -> Batch:
    """A batch as its pages show it: its owner's (and staff's), 404 for anyone else."""
    try:
        return visible_batch(user_request(request), batch_id)
    except Http404:
        raise ApiError(404, "not_found", "No such batch, or not one this token may see.") from None


@api.post("/batches", response={201: BatchOut, **BATCH_REFUSALS}, url_name="batches_create", tags=["batches"])
def create_batch(request: HttpRequest, payload: BatchIn) -> HttpResponse:
    """Start a list of prompts as one batch (up to 500 rows), as the Batch page does: every row is
    checked and priced first; one wrong row (422 `invalid_rows`, with each wrong row's line) or a
    total over the budget (402) starts nothing and charges nothing. Send `Idempotency-Key` to
    make a retry safe: the same key answers the first create's batch."""
    require_generate(request)
    key = idempotency_key(request)
    print_ = batch_fingerprint(payload)
    if key and (earlier := earlier_create(request, key, print_)):
        if earlier.batch is None:
            raise ApiError(404, "not_found", "The batch this Idempotency-Key made no longer exists.")
        return replayed(api.create_response(request, batch_out(earlier.batch), status=201))
    rows = [batch_rows.Row(line, row_values(row)) for line, row in enumerate(payload.rows, 1)]
    try:
        batch_rows.within_limit(rows)
    except batch_rows.Unreadable as exc:
        raise ApiError(422, "invalid", str(exc), fields={"rows": [str(exc)]}) from None
    board = None
    if payload.board is not None:
        board = Board.visible(request.user).filter(pk=payload.board).first()
        if board is None:
            raise ApiError(
                422, "invalid", "That board is not available.", fields={"board": ["No such board you can see."]}
            )
    defaults = batch_rows.Defaults(**payload.defaults.model_dump())
    try:
        with transaction.atomic():
            if key:
                record = IdempotencyKey.objects.create(user=user_request(request).user, key=key, fingerprint=print_)
            batch = batches.create_batch(
                owner=request.user, rows=rows, defaults=defaults, board=board, cheaper=payload.cheaper,
                title=payload.title.strip(),
            )  # fmt: skip
            if key:
                IdempotencyKey.objects.filter(pk=record.pk).update(batch=batch)
    except IntegrityError:  # the same key's create committed meanwhile
        if key and (earlier := earlier_create(request, key, print_)) and earlier.batch is not None:
            return replayed(api.create_response(request, batch_out(earlier.batch), status=201))
        raise
    except batches.Refused as exc:
        wrong = [{"line": row.line, "errors": row.errors} for row in exc.rows if row.errors]
        return refusal(request, 422, "invalid_rows", str(exc), rows=wrong)
    except ledger.OverBudget as exc:
        raise ApiError(402, "over_budget", str(exc)) from exc
    except pipeline.NoAccount as exc:
        raise ApiError(409, "no_account", str(exc)) from exc
    return api.create_response(request, batch_out(batch), status=201)


@api.get("/batches/{batch_id}", response={200: BatchOut, **REFUSALS}, url_name="batch", tags=["batches"])
def read_batch(request: HttpRequest, batch_id: int) -> dict:
    """A batch's progress (done, failed, waiting, running; charged and held) and its jobs' ids."""
    return batch_out(batch_for(request, batch_id))


@api.post(
    "/batches/{batch_id}/cancel", response={200: CanceledBatch, **REFUSALS, 409: ErrorOut}, url_name="batch_cancel",
    tags=["batches"],
)  # fmt: skip
def cancel_batch(request: HttpRequest, batch_id: int) -> dict:
    """Cancel and refund what has not started (its owner, or staff); what runs finishes. A batch
    through the vendor's Batch API is canceled whole, there and here."""
    require_generate(request)
    batch = batch_for(request, batch_id)
    if batches.progress(batch).finished:
        raise ApiError(409, "already_ended", "Every job of this batch has ended; nothing to cancel.")
    canceled = batches.cancel(batch)
    return {**batch_out(batch), "canceled": canceled}
