"""Finishing a job the provider is done with: download, verify, store, settle; then renditions.

The sweep only decides *when* (its status reads keep within the rate limits); what comes
after is CPU and I/O work that runs as django-q tasks on any worker process of any
cluster, so more workers and more hosts mean more finishing capacity:

    sweep: provider says done ──▶ FINISHING (the result's URLs, or its bytes kept in storage)
                               └─▶ async_task(finish, pk)
    any worker: claim the job ──▶ download ──▶ check the file is whole ──▶ store ──▶ SUCCEEDED + settle
                               └─▶ wake the renderer
    the renderer (one task at a time, at the lowest CPU priority): every image still without
        renditions ──▶ decode ──▶ display rendition + thumbnail

The original is what must not be lost (result URLs expire) and what tells the person their
image is there, so it goes first; a full decode and two WebP encodes cost ten times the rest
of finishing and come a moment later, on CPU that finishing leaves over (pages show the
original until then). One renderer works through what is waiting, so a burst of results costs
one task, not one per image (a task's round trip through the broker costs as much as
finishing itself). It holds a lease like the sweep; if it dies, the next wake or the
reconciler starts another.

Exactly once: the task claims the job by a conditional update, so a redelivered or repeated
task does nothing, and only one success is ever recorded (a second finisher's files are
deleted). Crash-safe: the claiming process holds the job (leases.py); a task lost
with its worker, or never delivered, is enqueued again by the sweep when the lease lapses.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from nanoweb.lib import http, images
from nanoweb.providers.base import ErrorKind, ProviderError, ProviderStatus, ResultImage, State
from nanoweb.studio.jobs import leases
from nanoweb.studio.models import GeneratedImage, Generation

log = logging.getLogger(__name__)
Status = Generation.Status
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
        saving_since=timezone.now(),
        due_at=timezone.now() + QUEUE_GRACE,
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
    """For the sweep: a FINISHING job whose holder stopped renewing its hold, whose task never
    started, or whose download waited to be tried again, goes to a new task."""
    now = timezone.now()
    if generation.waiting_reason:  # a download to try again, planned: not a lost task
        grace = QUEUE_GRACE
    else:
        grace = max(QUEUE_GRACE, 2 * (now - (generation.due_at or now) + QUEUE_GRACE))
        log.warning("generation %s: finishing task lost, enqueued again", generation.pk)
    lapsed = Generation.objects.filter(pk=generation.pk, status=Status.FINISHING, due_at__lte=now)
    if lapsed.update(claim="", due_at=now + grace):
        enqueue(generation.pk)


def finish(generation_id: int) -> None:
    """The finishing task: store the results and settle, once, on whichever worker runs it."""
    mine = leases.token()
    taken = Generation.objects.filter(pk=generation_id, status=Status.FINISHING, claim="").update(
        claim=mine, due_at=leases.hold_end()
    )
    if not taken:  # finished, cancelled, or another task holds it
        ended = Generation.objects.filter(pk=generation_id, status__in=Generation.TERMINAL).first()
        if ended is not None:
            discard_kept(ended.results)  # a job cancelled before its task came
        return
    try:
        store_results(Generation.objects.select_related("account").get(pk=generation_id))
    finally:
        if not results_waiting():  # the last of a burst of results starts the renditions
            wake_renderer()


class NotThereYet(Exception):
    """The provider's file is not served yet; `detail` is its last answer."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def store_results(generation: Generation) -> None:
    """Download, check and store every result, then mark the job done and settle it; or
    wait for a file that is not there yet; or fail it. Whatever way it ends, no file is
    left behind that no row points to."""
    stored: list[GeneratedImage] = []
    done = ended = False
    with leases.holding(generation.pk):
        try:
            for index, result in enumerate(generation.results):
                stored.append(store_image(generation, index, fetch(result)))
            with transaction.atomic():
                done = ended = generation.advance(Status.FINISHING, Status.SUCCEEDED, claim="", waiting_reason="")
                if done:
                    GeneratedImage.objects.bulk_create(stored)
        except NotThereYet as late:
            ended = try_again_later(generation, late.detail)
        except ProviderError as error:
            ended = generation.fail(Status.FINISHING, error)
        except Exception as exc:
            log.exception("generation %s failed while finishing", generation.pk)
            ended = generation.fail(Status.FINISHING, ProviderError(ErrorKind.INTERNAL, repr(exc)))
        finally:
            if not done:  # failed, waiting, cancelled meanwhile, or another task finished it first
                delete_files(stored)
    if ended:  # (a job cancelled meanwhile drops its kept bytes itself: `pipeline.cancel`)
        discard_kept(generation.results)


def delete_files(images: list[GeneratedImage]) -> None:
    for image in images:
        for stored_file in image.files:
            stored_file.delete(save=False)


def try_again_later(generation: Generation, answer: str) -> bool:
    """The provider said done but its file is not served yet (its CDN catching up): try
    again with backoff until RESULT_FETCH_SECONDS after it said so, then fail naming its last
    answer (True then). The sweep comes back to the job at `due_at` and enqueues the next try."""
    now = timezone.now()
    waited = (now - (generation.saving_since or now)).total_seconds()
    if waited >= settings.RESULT_FETCH_SECONDS:
        error = ProviderError(
            ErrorKind.BAD_RESULT, f"the provider's file was not there after {waited:.0f} s: {answer}", transport=True
        )
        return generation.fail(Status.FINISHING, error)
    # Soon at first (most CDNs catch up within seconds), then every 4 s, the last at the window's end.
    delay = min(4.0, max(1.0, waited / 2), settings.RESULT_FETCH_SECONDS - waited)
    generation.advance(
        Status.FINISHING,
        Status.FINISHING,
        claim="",
        due_at=now + timedelta(seconds=delay),
        waiting_reason="Saving: the provider's file is not ready yet",
    )
    return False


def fetch(result: dict[str, str]) -> bytes:
    """Download at once (result URLs expire), or read the bytes kept for us. A file that is
    not there yet raises NotThereYet; one that cannot be had at all, ProviderError."""
    if "file" in result:
        with default_storage.open(result["file"], "rb") as kept:
            return kept.read()
    try:
        return http.download(result["url"])[0]
    except (http.NotThereYet, http.Timeout, http.ConnectFailed) as exc:
        raise NotThereYet(str(exc)) from exc
    except (http.TooLarge, http.BlockedAddress) as exc:
        raise ProviderError(ErrorKind.BAD_RESULT, str(exc), transport=True) from exc
    except http.OutboundError as exc:  # the connection broke midway: the file may come whole next time
        raise NotThereYet(str(exc)) from exc


def store_image(generation: Generation, index: int, data: bytes) -> GeneratedImage:
    """Check that the file is a whole image and write it (an unsaved row; renditions follow)."""
    try:
        checked = images.check_complete(data)
    except images.InvalidImage as exc:
        raise ProviderError(ErrorKind.BAD_RESULT, str(exc)) from exc
    image = GeneratedImage(
        generation=generation,
        index=index,
        width=checked.width,
        height=checked.height,
        bytes=len(data),
        sha256=checked.sha256,
        mime_type=checked.mime_type,
    )
    image.store(checked, stem=f"{generation.uuid}-{index}")
    return image


# --- renditions ---------------------------------------------------------------------

RENDERER = "render"  # its lease's name
RENDER_LEASE = timedelta(seconds=60)  # renewed at every image; a 4K one takes a second or two


def waiting_for_renditions():
    return GeneratedImage.objects.filter(display="", unreadable=False)


def results_waiting() -> bool:
    """Whether a finished job's results are still being stored. Results come first: in a
    burst they take the cores, and the renditions follow (pages show the original until then)."""
    return Generation.objects.filter(status=Status.FINISHING).exists()


def wake_renderer() -> None:
    """Start the renderer unless one holds the lease. Cheap: safe after every finished job."""
    leases.wake(RENDERER, "nanoweb.studio.jobs.finishing.render", first=RENDER_LEASE)


def render(token: str) -> None:
    """The renderer task: make the renditions of every image waiting for them, oldest first,
    then stop (a later wake starts another). Ends early if its lease was taken over, and
    gives way while results are being stored: the last of them wakes it again."""
    began = time.monotonic()
    while time.monotonic() - began < settings.TASK_TIMEOUT - 60:
        if not leases.renew(RENDERER, token, RENDER_LEASE.total_seconds()):
            return
        if results_waiting():
            break
        image = waiting_for_renditions().order_by("pk").first()
        if image is None:
            break
        make_renditions(image)
    leases.release(RENDERER, token)
    # Checked after the lease is free, so that a finishing task that found it held is not lost.
    if not results_waiting() and waiting_for_renditions().exists():  # came meanwhile, or out of time
        wake_renderer()


def make_renditions(image: GeneratedImage) -> bool:
    """Decode the original on this process's low-priority thread and store its renditions.
    An original that cannot be decoded is marked so (and logged): it keeps standing in."""
    try:
        with image.original.open("rb") as handle:
            made = renderer().submit(images.renditions, handle.read()).result()
    except (OSError, images.InvalidImage) as exc:
        log.error("image %s (%s): no renditions: %s", image.pk, image.original.name, exc)
        GeneratedImage.objects.filter(pk=image.pk).update(unreadable=True)
        return False
    image.store_renditions(made)
    return True


_renderer: tuple[int, ThreadPoolExecutor] | None = None


def renderer() -> ThreadPoolExecutor:
    """This process's rendition thread, at the lowest CPU priority: a burst of results is
    stored and settled first, and the renditions take the CPU left over. The renderer task
    waits for it, so nothing else of this process wants the interpreter meanwhile."""
    global _renderer
    if _renderer is None or _renderer[0] != os.getpid():  # a forked worker makes its own
        _renderer = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="renditions", initializer=_lowest_priority))
    return _renderer[1]


def _lowest_priority() -> None:
    if sys.platform.startswith("linux"):  # there, a thread's nice value is its own
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
