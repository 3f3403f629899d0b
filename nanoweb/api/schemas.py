"""What the API says about a job and a batch, in one place: the API's answers and the webhooks' bodies."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.urls import reverse
from ninja import Schema

from nanoweb.batches import service as batches
from nanoweb.batches.models import Batch
from nanoweb.studio.models import GeneratedImage, Generation


class ImageOut(Schema):
    id: int
    index: int
    width: int
    height: int
    bytes: int
    mime_type: str
    sha256: str
    download_url: str


class ErrorOut(Schema):
    code: str
    message: str
    fields: dict[str, list[str]] | None = None


class JobOut(Schema):
    id: int
    status: str
    prompt: str
    owner: str
    model: str
    provider: str
    aspect_ratio: str
    resolution: str
    output_format: str
    google_search: bool
    private: bool
    price: str | None
    progress: int
    error_kind: str
    error_message: str
    retryable: bool
    created_at: datetime
    finished_at: datetime | None
    images: list[ImageOut]
    url: str


class JobList(Schema):
    jobs: list[JobOut]
    next: str | None  # the cursor for the next page (`before`), None at the end


class CreatedJobs(Schema):
    jobs: list[JobOut]


class RowErrors(Schema):
    line: int  # the row's place in `rows`, 1 for the first
    errors: list[str]


class RowsRefused(ErrorOut):
    rows: list[RowErrors] | None = None  # with `invalid_rows`: each wrong row and what is wrong with it


class BatchProgress(Schema):
    done: int
    failed: int  # failed or canceled: not charged
    waiting: int  # not started yet (what cancel stops)
    running: int
    total: int
    charged: str  # for the images made so far
    held: str  # reserved for what has not ended yet
    priced: str  # what the whole was priced at when it started


class BatchOut(Schema):
    id: int
    title: str
    kind: str  # "list", or "compare" (one prompt side by side on several models)
    owner: str
    cheaper: bool  # through the vendor's Batch API: half the price, within a day
    board: int | None
    created_at: datetime
    finished: bool
    finished_at: datetime | None  # when its last job ended
    progress: BatchProgress
    jobs: list[int]  # its jobs' ids, in the order of its rows (`GET /jobs/{id}`)
    url: str


class CanceledBatch(BatchOut):
    canceled: int  # the jobs this cancel stopped (and refunded)


def absolute(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}" if settings.PUBLIC_BASE_URL else path


def image_out(image: GeneratedImage) -> dict:
    return {
        "id": image.pk, "index": image.index, "width": image.width, "height": image.height, "bytes": image.bytes,
        "mime_type": image.mime_type, "sha256": image.sha256,
        "download_url": absolute(reverse("api:job_original", args=[image.generation_id]) + f"?index={image.index}"),
    }  # fmt: skip


def job_out(job: Generation) -> dict:
    return {
        "id": job.pk,
        "status": job.status,
        "prompt": job.prompt,
        "owner": job.owner.get_username(),
        "model": job.model_label,
        "provider": job.account.name,
        "aspect_ratio": job.aspect_ratio,
        "resolution": job.resolution,
        "output_format": job.output_format,
        "google_search": job.google_search,
        "private": job.private,
        "price": money(job.price) if job.price is not None else None,
        "progress": job.progress,
        "error_kind": job.error_kind,
        "error_message": job.error_message,
        "retryable": job.retryable,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "images": [image_out(image) for image in job.images.all()],
        "url": absolute(job.get_absolute_url()),
    }


def money(amount) -> str:
    return format(amount.normalize(), "f") if amount else "0"


def batch_out(batch: Batch) -> dict:
    progress = batches.progress(batch)
    jobs = Generation.objects.filter(batch_item__batch=batch).order_by("batch_item__line", "pk")
    return {
        "id": batch.pk,
        "title": batch.title,
        "kind": batch.kind,
        "owner": batch.owner.get_username(),
        "cheaper": batch.cheaper,
        "board": batch.board_id,
        "created_at": batch.created_at,
        "finished": progress.finished,
        "finished_at": batch.finished_at,
        "progress": {
            "done": progress.done,
            "failed": progress.failed,
            "waiting": progress.waiting,
            "running": progress.running,
            "total": progress.total,
            "charged": money(progress.charged),
            "held": money(progress.held),
            "priced": money(batches.cost_total(batch)),
        },  # fmt: skip
        "jobs": list(jobs.values_list("pk", flat=True)),
        "url": absolute(batch.get_absolute_url()),
    }
