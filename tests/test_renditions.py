"""Display renditions: made once with the thumbnail (WebP, at most 2048 px), shown by the detail
page and the lightbox, served only to those who may see the result; the original only downloads."""

from __future__ import annotations

import io
import os

from django.core.files.base import ContentFile
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from nanoweb.lib import images
from nanoweb.studio import finishing, history
from nanoweb.studio.models import Generation
from tests.conftest import start_job, succeed
from tests.test_references import png


def size_of(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


def test_a_4k_original_gets_a_2048_px_webp_rendition_a_fraction_of_its_bytes():
    detailed = Image.effect_noise((1024, 576), 60).convert("RGB").resize((4096, 2304), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    detailed.save(out, "JPEG", quality=95)
    prepared = images.prepare(out.getvalue())

    assert size_of(prepared.display) == ("WEBP", (2048, 1152))
    assert size_of(prepared.thumbnail) == ("WEBP", (512, 288))
    assert len(prepared.display) * 4 < len(prepared.data)
    assert size_of(images.prepare(png(size=(64, 48))).display) == ("WEBP", (64, 48)), "never enlarged"


def test_the_rendition_is_upright_like_the_thumbnail():
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turn 90° to show
    Image.new("RGB", (300, 100), "red").save(out, "JPEG", exif=exif)
    prepared = images.prepare(out.getvalue())
    assert (prepared.width, prepared.height) == (300, 100), "the original's facts, as stored"
    assert size_of(prepared.display)[1] == (100, 300) and size_of(prepared.thumbnail)[1] == (100, 300)


def finished(owner, account, **fields) -> Generation:
    [job] = start_job(owner, account, "gemini-2.5-flash-image", "a kite", **fields)
    finishing.store_image(job, 0, png(size=(80, 60))).save()
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
    image.display.delete(save=True)  # as stored before renditions existed
    client.force_login(owner)
    assert client.get(reverse("image_display", args=[image.pk]))["Content-Type"] == "image/png"

    out = io.StringIO()
    call_command("make_renditions", stdout=out)
    assert "made 1 display renditions" in out.getvalue()
    image.refresh_from_db()
    assert size_of(image.display.read()) == ("WEBP", (80, 60))
    first = image.display.name
    call_command("make_renditions", stdout=out)
    image.refresh_from_db()
    assert "made 0 display renditions" in out.getvalue() and image.display.name == first, "made once"
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
