"""Editing with reference images: upload or pick, validated by content, delivered by signed
link (URL-based providers) or inline (Gemini), and shown beside the result."""

from __future__ import annotations

import hashlib
import io
import time

import pytest
from django.core import signing
from django.urls import reverse
from PIL import Image

from nanoweb.lib import images
from nanoweb.studio import references
from nanoweb.studio.models import GeneratedImage, Generation, ReferenceImage
from tests.conftest import chosen, start_job, wait_until_terminal


def png(size=(64, 48), color="teal", kind="PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, kind)
    return out.getvalue()


def upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")


def post(client, account, model, files=(), **extra):
    data = {"prompt": "make it blue", **chosen(account, model), "reference_files": list(files), **extra}
    return client.post(reverse("generate"), data, HTTP_HX_REQUEST="true")


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("notes.png", b"just some text, not an image", "not a readable image"),
        ("photo.png", png(kind="GIF"), "unsupported image type GIF"),
        ("cut.png", png()[:-30], "not a readable image"),
    ],
    ids=["not an image", "renamed gif", "truncated"],
)
def test_bad_uploads_are_refused_by_content_and_nothing_is_stored(owner_client, make_account, name, data, message):
    response = post(owner_client, make_account("gemini"), "gemini-2.5-flash-image", [upload(name, data)])
    assert message in response.text and name in response.text
    assert not Generation.objects.exists() and not ReferenceImage.objects.exists()


def test_oversized_and_bomb_uploads_are_refused(owner_client, make_account, settings):
    gemini = make_account("gemini")
    settings.MAX_UPLOAD_BYTES = 1000
    assert (
        "is too large"
        in post(owner_client, gemini, "gemini-2.5-flash-image", [upload("big.png", png((400, 400)))]).text
    )
    settings.MAX_UPLOAD_BYTES = 10_000_000
    settings.MAX_IMAGE_PIXELS = 10_000
    assert (
        "too many pixels"
        in post(owner_client, gemini, "gemini-2.5-flash-image", [upload("bomb.png", png((500, 500)))]).text
    )
    assert not Generation.objects.exists()


def test_more_references_than_the_model_takes_are_refused(owner_client, make_account, settings):
    settings.PUBLIC_BASE_URL = "https://studio.example"
    response = post(
        owner_client, make_account("apiframe"), "nano-banana-2", [upload(f"{n}.png", png()) for n in range(2)]
    )
    assert "This model takes at most 1 reference images; you gave 2." in response.text
    assert not Generation.objects.exists()


def test_without_a_public_address_jobs_with_references_go_to_accounts_that_take_them_inline(
    owner_client, make_account, settings
):
    settings.PUBLIC_BASE_URL = ""
    crun = make_account("crun")
    options = owner_client.get(reverse("form_options"), {"model": "Nano Banana 2"})
    assert "PUBLIC_BASE_URL" not in options.text, "a server matter, for staff: members are not told"
    refused = post(owner_client, crun, "google/nano-banana-2", [upload("a.png", png())], routing="auto")
    assert "No account serving this model can take reference images here" in refused.text
    assert not Generation.objects.exists() and not ReferenceImage.objects.exists()

    gemini = make_account("gemini")
    crun.priority = 1  # crun first, were it not for the references
    crun.save()
    post(owner_client, crun, "google/nano-banana-2", [upload("a.png", png())], routing="auto")
    assert Generation.objects.get().account == gemini


def test_nothing_is_written_when_the_budget_refuses_a_job_with_uploads(owner_client, owner, make_account, settings):
    from nanoweb.credits.models import Budget

    Budget.objects.create(user=owner, amount=0, period="month")
    media = settings.STORAGES["default"]["OPTIONS"]["location"]
    response = post(owner_client, make_account("gemini"), "gemini-2.5-flash-image", [upload("a.png", png())])
    assert "left this month" in response.text
    assert not ReferenceImage.objects.exists()
    assert not media.exists() or not [path for path in media.rglob("*") if path.is_file()]


def test_signed_links_work_until_they_expire_and_refuse_tampering(client, owner, make_account, settings):
    settings.PUBLIC_BASE_URL = "https://studio.example"
    [job] = start_job(owner, make_account("gemini"), "gemini-2.5-flash-image", reference_files=[images.check(png())])
    reference = references.ordered(job)[0]
    url = references.signed_url(reference)
    assert url.startswith("https://studio.example/refs/")
    path = url.removeprefix("https://studio.example")

    assert client.get(path).status_code == 200, "no sign-in needed: providers fetch it"
    assert b"".join(client.get(path).streaming_content) == png()
    assert client.get(path[:-3] + "abc").status_code == 404
    other = signing.TimestampSigner(salt="another purpose").sign(str(reference.pk))
    assert client.get(reverse("reference_link", args=[other])).status_code == 404
    settings.REFERENCE_LINK_SECONDS = 0
    time.sleep(1.1)
    assert client.get(path).status_code == 404, "expired"


def test_gemini_gets_the_references_inline(owner_client, owner, make_account, simulator):
    from tests.test_providers import run_to_end

    first, second = png(color="red"), png(color="blue")
    post(owner_client, make_account("gemini"), "gemini-3.1-flash-image",
         [upload("a.png", first), upload("b.png", second)], resolution="1K", prompt="inline pair")  # fmt: skip
    job = run_to_end(Generation.objects.get())

    assert job.status == "succeeded", job.error_detail
    sent = next(j for j in simulator.jobs.values() if j.protocol == "gemini" and j.prompt == "inline pair")
    assert sent.params["reference_sha256"] == [hashlib.sha256(first).hexdigest(), hashlib.sha256(second).hexdigest()]


def test_editing_an_earlier_result_through_signed_links_end_to_end(live_server, start_worker, owner_client, owner,
                                                                     make_account, simulator, settings):  # fmt: skip
    """Upload → the provider fetches each reference by signed URL → the result shows its lineage."""
    settings.PUBLIC_BASE_URL = live_server.url
    start_worker(PUBLIC_BASE_URL=live_server.url)
    crun = make_account("crun")
    post(owner_client, crun, "google/nano-banana-2")
    earlier = wait_until_terminal(Generation.objects.get())
    earlier_image = earlier.images.get()
    page = owner_client.get(reverse("studio") + f"?pick={earlier.pk}")
    assert f'name="reference_results" value="{earlier_image.pk}"' in page.text

    extra = png(color="orange")
    response = post(owner_client, crun, "google/nano-banana-2", [upload("extra.png", extra)],
                    reference_results=[earlier_image.pk], prompt="the same, at dusk")  # fmt: skip
    assert response.status_code == 201, response.text
    edit = wait_until_terminal(Generation.objects.get(prompt="the same, at dusk"))

    assert edit.status == "succeeded", edit.error_detail
    fetched = simulator.jobs[edit.provider_task_id].params["reference_sha256"]
    assert fetched == [earlier_image.sha256, hashlib.sha256(extra).hexdigest()]
    assert GeneratedImage.objects.count() == 2, "the earlier result was referenced, not copied"
    detail = owner_client.get(edit.get_absolute_url())
    assert "Made from" in detail.text and earlier.get_absolute_url() in detail.text
    assert owner_client.get(reverse("generation_reference", args=[edit.pk, 1])).status_code == 200


def test_references_are_shown_only_to_those_who_may_see_the_job(client, owner, teammate, make_account):
    [job] = start_job(owner, make_account("gemini"), "gemini-2.5-flash-image", reference_files=[images.check(png())],
                     private=True)  # fmt: skip
    url = reverse("generation_reference", args=[job.pk, 0])
    assert client.get(url).status_code == 302
    client.force_login(teammate)
    assert client.get(url).status_code == 404
    client.force_login(owner)
    assert client.get(url).status_code == 200


def test_a_member_cannot_pick_someone_elses_private_result_as_a_reference(owner_client, teammate, make_account):
    crun = make_account("gemini")
    [theirs] = start_job(teammate, crun, "gemini-2.5-flash-image", "theirs", private=True)
    image = GeneratedImage(generation=theirs, width=1, height=1, bytes=1, sha256="0" * 64, mime_type="image/png")
    image.original.name, image.thumbnail.name = "x.png", "x.webp"
    image.save()
    response = post(owner_client, crun, "gemini-2.5-flash-image", reference_results=[image.pk])
    assert "A chosen earlier result is not available." in response.text
    assert Generation.objects.count() == 1


@pytest.mark.parametrize(
    "kind, model", [("crun", "google/nano-banana"), ("nanophoto", "nano-banana-2"), ("apiframe", "nano-banana-2"),
                    ("defapi", "google/gempix2")],
)  # fmt: skip
def test_every_url_provider_edits_with_references_it_fetches_by_signed_link(
    live_server, owner_client, make_account, simulator, settings, kind, model
):
    from tests.test_providers import run_to_end

    settings.PUBLIC_BASE_URL = live_server.url
    reference = png(color="purple")
    response = post(owner_client, make_account(kind), model, [upload("ref.png", reference)], prompt=f"{kind} edit")
    assert response.status_code == 201, response.text
    job = run_to_end(Generation.objects.get())

    assert job.status == "succeeded", job.error_detail
    assert simulator.jobs[job.provider_task_id].params["reference_sha256"] == [hashlib.sha256(reference).hexdigest()]
    if kind == "nanophoto":
        assert simulator.jobs[job.provider_task_id].params["mode"] == "edit"
