"""What the API says about a job, in one place: the API's answers and the webhooks' bodies."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.urls import reverse
from ninja import Schema

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
        "price": format(job.price.normalize(), "f") if job.price is not None else None,
        "progress": job.progress,
        "error_kind": job.error_kind,
        "error_message": job.error_message,
        "retryable": job.retryable,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "images": [image_out(image) for image in job.images.all()],
        "url": absolute(job.get_absolute_url()),
    }
