"""Finishing a job the provider is done with: download, verify, renditions, store, settle.

The sweep only decides *when* (its status reads keep within the rate limits); what comes
after is CPU and I/O work that runs as a django-q task on any worker process of any
cluster, so more workers and more hosts mean more finishing capacity:

    sweep: provider says done ──▶ FINISHING (the result's URLs, or its bytes kept in storage)
                               └─▶ async_task(finish, pk)
    any worker: claim the job ──▶ download ──▶ verify ──▶ renditions ──▶ store ──▶ SUCCEEDED + settle

Exactly once: the task claims the job by a conditional update, so a redelivered or repeated
task does nothing, and only one success is ever recorded (a second finisher's files are
deleted). Crash-safe: the claiming process keeps a lease on the job (holds.py); a task lost
with its worker, or never delivered, is enqueued again by the sweep when the lease lapses.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from nanoweb.lib import http, images
from nanoweb.providers.base import ErrorKind, ProviderError, ProviderStatus, ResultImage, State
from nanoweb.studio import holds
from nanoweb.studio.models import GeneratedImage, Generation

log = logging.getLogger(__name__)
Status = Generation.Status
IMAGE_SLOTS = threading.BoundedSemaphore(2)  # full-size decodes at once per process (memory)
# A task not started this long after it was enqueued is presumed lost and enqueued again
# (a second one only finds the job taken); it doubles each time the queue is that deep.
QUEUE_GRACE = timedelta(seconds=60)


def hand_over(generation: Generation, status: ProviderStatus, *, old: str | frozenset[str], **fields) -> None:
    """The provider gave its final answer: a failure ends the job here; a success goes to
    a finishing task. Results that came as bytes are kept in storage until then."""
    if status.provider_cost:
        fields["provider_cost"] = status.provider_cost
    if status.state == State.FAILED:
        error = status.error or ProviderError(ErrorKind.GENERATION_FAILED, "no reason given")
        generation.fail(old, error, provider_said=True, **fields)
        return
    if not status.images:
        generation.fail(old, ProviderError(ErrorKind.MALFORMED, "the provider reported success without an image"))
        return
    results = [keep(result) for result in status.images]
    moved = generation.advance(
        old,
        Status.FINISHING,
        results=results,
        progress=100,
        claim="",
        next_poll_at=timezone.now() + QUEUE_GRACE,
        **fields,
    )
    if moved:
        enqueue(generation.pk)
    else:  # cancelled or expired meanwhile
        discard_kept(results)


def keep(result: ResultImage) -> dict[str, str]:
    """Where the finishing task finds this result: its URL, or its bytes written to storage
    (a synchronous answer or a data URI) so that any worker can take it up."""
    if result.url:
        return {"url": result.url}
    return {"file": default_storage.save(f"incoming/{uuid.uuid4().hex}", ContentFile(result.data))}


def discard_kept(results: list[dict[str, str]]) -> None:
    for result in results:
        if "file" in result:
            default_storage.delete(result["file"])


def enqueue(generation_id: int) -> None:
    async_task(finish, generation_id, save=False, task_name=f"finish-{generation_id}")


def requeue_lost(generation: Generation) -> None:
    """For the sweep: a FINISHING job whose holder stopped renewing its lease, or whose task
    never started, goes to a new task."""
    now = timezone.now()
    waited = now - (generation.next_poll_at or now) + QUEUE_GRACE
    lapsed = Generation.objects.filter(pk=generation.pk, status=Status.FINISHING, next_poll_at__lte=now)
    if lapsed.update(claim="", next_poll_at=now + max(QUEUE_GRACE, 2 * waited)):
        log.warning("generation %s: finishing task lost, enqueued again", generation.pk)
        enqueue(generation.pk)


def finish(generation_id: int) -> None:
    """The finishing task: store the results and settle, once, on whichever worker runs it."""
    mine = holds.token()
    taken = Generation.objects.filter(pk=generation_id, status=Status.FINISHING, claim="").update(
        claim=mine, next_poll_at=holds.lease_end()
    )
    if not taken:  # finished, cancelled, or another task holds it
        ended = Generation.objects.filter(pk=generation_id, status__in=Generation.TERMINAL).first()
        if ended is not None:
            discard_kept(ended.results)  # a job cancelled before its task came
        return
    generation = Generation.objects.select_related("account").get(pk=generation_id)
    with holds.holding(generation_id):
        try:
            stored = [store_image(generation, index, fetch(result)) for index, result in enumerate(generation.results)]
        except ProviderError as error:
            generation.fail(Status.FINISHING, error)
            discard_kept(generation.results)
            return
        except Exception as exc:
            log.exception("generation %s failed while finishing", generation_id)
            generation.fail(Status.FINISHING, ProviderError(ErrorKind.INTERNAL, repr(exc)))
            return
        with transaction.atomic():
            done = generation.advance(Status.FINISHING, Status.SUCCEEDED, claim="")
            if done:
                GeneratedImage.objects.bulk_create(stored)
    if not done:  # cancelled meanwhile, or another task finished it first: keep only theirs
        for image in stored:
            for stored_file in image.files:
                stored_file.delete(save=False)
    discard_kept(generation.results)


def fetch(result: dict[str, str]) -> bytes:
    """Download at once (result URLs expire), or read the bytes kept for us."""
    if "file" in result:
        with default_storage.open(result["file"], "rb") as kept:
            return kept.read()
    try:
        return http.download(result["url"])[0]
    except http.OutboundError as exc:
        raise ProviderError(ErrorKind.BAD_RESULT, str(exc)) from exc


def store_image(generation: Generation, index: int, data: bytes) -> GeneratedImage:
    """Verify the bytes with Pillow, make the renditions, and write them all (unsaved row)."""
    with IMAGE_SLOTS:
        try:
            prepared = images.prepare(data)
        except images.InvalidImage as exc:
            raise ProviderError(ErrorKind.BAD_RESULT, str(exc)) from exc
    image = GeneratedImage(
        generation=generation,
        index=index,
        width=prepared.width,
        height=prepared.height,
        bytes=len(data),
        sha256=prepared.sha256,
        mime_type=prepared.mime_type,
    )
    image.store(prepared, stem=f"{generation.uuid}-{index}")
    return image
