"""Display renditions: made once with the thumbnail (WebP, at most 2048 px) a moment after the
original is stored, shown by the detail page and the lightbox, served only to those who may see
the result; the original only downloads, and stands in until the renditions are made."""

from __future__ import annotations

import io
import os
import sys
import threading

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_q.brokers import get_broker
from PIL import Image

from nanoweb.lib import images
from nanoweb.providers.base import ResultImage
from nanoweb.studio import audit, history
from nanoweb.studio.jobs import finishing, sweep
from nanoweb.studio.models import Generation, Lease
from tests.conftest import start_job, store_result, succeed
from tests.test_references import png


def size_of(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


def test_a_4k_original_gets_a_2048_px_webp_rendition_a_fraction_of_its_bytes():
    detailed = Image.effect_noise((1024, 576), 60).convert("RGB").resize((4096, 2304), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    detailed.save(out, "JPEG", quality=95)
    made = images.renditions(out.getvalue())

    assert size_of(made.display) == ("WEBP", (2048, 1152))
    assert size_of(made.thumbnail) == ("WEBP", (512, 288))
    assert len(made.display) * 4 < len(out.getvalue())
    assert size_of(images.renditions(png(size=(64, 48))).display) == ("WEBP", (64, 48)), "never enlarged"


def test_the_rendition_is_upright_like_the_thumbnail():
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turn 90° to show
    Image.new("RGB", (300, 100), "red").save(out, "JPEG", exif=exif)
    checked, made = images.check_complete(out.getvalue()), images.renditions(out.getvalue())
    assert (checked.width, checked.height) == (300, 100), "the original's facts, as stored"
    assert size_of(made.display)[1] == (100, 300) and size_of(made.thumbnail)[1] == (100, 300)


def finished(owner, account, **fields) -> Generation:
    [job] = start_job(owner, account, "gemini-2.5-flash-image", "a kite", **fields)
    store_result(job, png(size=(80, 60)))
    succeed(job)
    return job


def test_pages_show_the_rendition_and_link_the_original_for_download(client, owner, make_account):
    job = finished(owner, make_account("gemini"))
    image = job.image
    client.force_login(owner)

    detail = client.get(job.get_absolute_url()).text
    assert f'<img src="{reverse("image_display", args=[image.pk])}"' in detail
    assert f'href="{reverse("image_original", args=[image.pk])}?download=1"' in detail
    assert f'<img src="{reverse("image_original", args=[image.pk])}"' not in detail
    gallery = client.get(reverse("gallery")).text
    assert f'data-lightbox="{reverse("image_display", args=[image.pk])}"' in gallery

    response = client.get(reverse("image_display", args=[image.pk]))
    assert response["Content-Type"] == "image/webp" and "private" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == image.display.read()


def test_the_rendition_is_for_those_who_may_see_the_result(client, owner, teammate, staff, make_account):
    job = finished(owner, make_account("gemini"), private=True)
    url = reverse("image_display", args=[job.image.pk])
    assert client.get(url)["Location"].startswith(reverse("login"))
    client.force_login(teammate)
    assert client.get(url).status_code == 404
    client.force_login(staff)
    assert client.get(url).status_code == 200


def test_older_images_show_the_original_until_the_command_makes_their_rendition_once(
    client, owner, make_account, django_capture_on_commit_callbacks
):
    job = finished(owner, make_account("gemini"))
    image = job.image
    first_thumbnail = image.thumbnail.path
    image.display.delete(save=True)  # as stored before renditions existed
    client.force_login(owner)
    assert client.get(reverse("image_display", args=[image.pk]))["Content-Type"] == "image/png"

    out = io.StringIO()
    call_command("make_renditions", stdout=out)
    assert "made renditions of 1 images" in out.getvalue()
    image.refresh_from_db()
    assert size_of(image.display.read()) == ("WEBP", (80, 60))
    assert not os.path.exists(first_thumbnail), "the thumbnail it had is replaced, not left behind"
    first = image.display.name
    call_command("make_renditions", stdout=out)
    image.refresh_from_db()
    assert "made renditions of 0 images" in out.getvalue() and image.display.name == first, "made once"
    assert client.get(reverse("image_display", args=[image.pk]))["Content-Type"] == "image/webp"

    stored = [image.original.path, image.display.path, image.thumbnail.path]
    with django_capture_on_commit_callbacks(execute=True):
        history.delete(job)
    assert not any(os.path.exists(path) for path in stored), "deleting removes the rendition too"


def test_an_unreadable_original_is_reported_and_skipped(owner, make_account):
    image = finished(owner, make_account("gemini")).image
    image.display.delete(save=False)
    image.original.save("broken.png", ContentFile(b"not an image"), save=False)
    image.save()
    err = io.StringIO()
    call_command("make_renditions", stdout=io.StringIO(), stderr=err)
    assert f"image {image.pk}" in err.getvalue()


def finishing_with(owner, account, data: bytes) -> Generation:
    """A job the provider is done with, its result's bytes kept for the finishing task."""
    [job] = start_job(owner, account, "gemini-2.5-flash-image", "a kite")
    job.advance(Generation.Status.QUEUED, Generation.Status.SUBMITTING)
    job.advance(Generation.Status.SUBMITTING, Generation.Status.SUBMITTED)
    job.advance(
        Generation.Status.SUBMITTED, Generation.Status.FINISHING, results=[finishing.keep(ResultImage(data=data))]
    )
    return job


@pytest.fixture
def broker():
    """The task queue as configured (the database, or Redis on the scale-out pass), empty."""
    queue = get_broker()
    queue.purge_queue()
    return queue


def renderer_token() -> str:
    return Lease.objects.get(name=finishing.RENDERER).holder


def test_a_result_is_done_with_its_original_and_the_renditions_follow(client, owner, make_account, broker):
    gemini = make_account("gemini")
    jobs = [finishing_with(owner, gemini, png(size=(80, 60))) for _ in range(3)]
    for job in jobs:
        finishing.finish(job.pk)

    assert all(job.status == Generation.Status.SUCCEEDED for job in Generation.objects.all())
    assert audit.ledger_problems() == []
    image = jobs[0].images.get()
    assert image.original and not image.display and not image.thumbnail
    assert broker.queue_size() == 1, "one renderer for the three, not a task each"
    client.force_login(owner)
    for variant in ("image_thumbnail", "image_display"):
        assert client.get(reverse(variant, args=[image.pk]))["Content-Type"] == "image/png", "the original stands in"

    finishing.render(renderer_token())
    image.refresh_from_db()
    assert size_of(image.thumbnail.read()) == ("WEBP", (80, 60)) and size_of(image.display.read())[0] == "WEBP"
    assert not finishing.waiting_for_renditions().exists(), "it made them all"
    for variant in ("image_thumbnail", "image_display"):
        assert client.get(reverse(variant, args=[image.pk]))["Content-Type"] == "image/webp"
    assert Lease.objects.get(name=finishing.RENDERER).expires_at <= timezone.now(), "and let its lease go"


def test_the_renderer_gives_way_to_results_being_stored_and_the_last_of_them_wakes_it(owner, make_account, broker):
    gemini = make_account("gemini")
    first, waiting = finishing_with(owner, gemini, png(size=(80, 60))), finishing_with(owner, gemini, png())
    finishing.finish(first.pk)
    assert broker.queue_size() == 0, "a result still waits to be stored: no renderer yet"

    finishing.wake_renderer()  # as the reconciler would
    finishing.render(renderer_token())
    assert finishing.waiting_for_renditions().count() == 1, "it gave way to the result being stored"
    assert Lease.objects.get(name=finishing.RENDERER).expires_at <= timezone.now(), "and let its lease go"
    broker.purge_queue()

    finishing.finish(waiting.pk)
    assert broker.queue_size() == 1, "the last result wakes it"
    finishing.render(renderer_token())
    assert not finishing.waiting_for_renditions().exists()


def test_renditions_are_made_at_the_lowest_cpu_priority():
    if not sys.platform.startswith("linux"):
        pytest.skip("thread priorities are Linux's")
    niceness = finishing.renderer().submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert niceness.result() == 19
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 19, "the rest of the process keeps its own"


def test_a_lost_renderer_is_replaced_once_its_lease_lapses(owner, make_account, broker):
    job = finishing_with(owner, make_account("gemini"), png(size=(80, 60)))
    finishing.finish(job.pk)
    broker.purge_queue()  # the renderer's task was lost with its worker
    sweep.reconcile()
    assert broker.queue_size() == 0, "not while its lease holds"

    Lease.objects.filter(name=finishing.RENDERER).update(expires_at=timezone.now())
    sweep.reconcile()
    assert broker.queue_size() == 1
    lost = Lease.objects.get(name=finishing.RENDERER).holder
    finishing.render("an-old-holder")
    assert finishing.waiting_for_renditions().exists(), "a renderer that lost its lease stops"
    finishing.render(lost)
    assert not finishing.waiting_for_renditions().exists()


def test_an_undecodable_original_keeps_its_job_is_logged_and_tried_once(owner, make_account, caplog):
    job = finishing_with(owner, make_account("gemini"), png(size=(80, 60)))
    finishing.finish(job.pk)
    image = job.images.get()
    with image.original.open("r+b") as handle:  # whole file, checksums intact, pixels unreadable
        handle.seek(0)
        handle.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)

    finishing.render(renderer_token())
    assert f"image {image.pk}" in caplog.text
    image.refresh_from_db()
    assert image.unreadable and not image.display, "the original still stands in"
    assert Generation.objects.get(pk=job.pk).status == Generation.Status.SUCCEEDED
    assert not finishing.waiting_for_renditions().exists(), "not tried again and again"
