"""What one submission's references may cost: their bytes together (and what an inline vendor's
request carries), only the image itself stored, one inline payload per set, and each member's
storage quota, which staff see and change."""

from __future__ import annotations

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from nanoweb.credits.models import LedgerEntry
from nanoweb.providers.gemini import GeminiAdapter
from nanoweb.quotas.models import StorageQuota
from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation, ReferenceImage
from tests.test_references import png, post
from tests.test_upload_limits import field_errors

GEMINI_31 = "gemini-3.1-flash-image"  # takes 14 references, inline


def padded(n: int, junk: int) -> SimpleUploadedFile:
    """A valid 64×64 PNG followed by `junk` bytes of something else (the issue's upload)."""
    return SimpleUploadedFile(f"ref-{n}.png", png((64, 64)) + b"\x00junk" * (junk // 5), content_type="image/png")


def test_the_bytes_of_one_submission_s_references_are_bounded(owner_client, make_account, settings):
    """The issue's submission, scaled down 10×: count=4, 14 PNGs each followed by 1.99 MB of junk,
    every file within the per-file limit; refused for their sum before any is read or decoded."""
    settings.MAX_UPLOAD_BYTES = 2 * 1024 * 1024
    settings.MAX_REFERENCE_BYTES = 4 * 1024 * 1024
    files = [padded(n, 1_990_000) for n in range(14)]
    response = post(owner_client, make_account("gemini"), GEMINI_31, files, count="4")
    assert "These images are 26.6 MB together; one submission takes at most 4.0 MB." in field_errors(response.text)
    assert not Generation.objects.exists() and not ReferenceImage.objects.exists()
    assert not LedgerEntry.objects.exists(), "no credit taken on bad input"


def test_only_the_image_itself_is_stored_not_what_follows_it_in_the_file(owner_client, make_account):
    response = post(owner_client, make_account("gemini"), GEMINI_31, [padded(0, 500_000)])
    assert response.status_code == 201, response.text[:300]
    [reference] = ReferenceImage.objects.all()
    assert reference.bytes == len(png((64, 64))) == len(reference.read())


def test_references_beyond_what_an_inline_request_carries_go_to_an_account_that_fetches_them(
    owner_client, make_account, settings, monkeypatch
):
    monkeypatch.setattr(GeminiAdapter, "max_inline_bytes", 1000)
    gemini = make_account("gemini")
    out = io.BytesIO()
    Image.effect_noise((64, 64), 80).save(out, "PNG")  # noise does not compress: about 4 KB
    big = SimpleUploadedFile("big.png", out.getvalue(), content_type="image/png")
    data = {"prompt": "p", "model": "Nano Banana 2", "resolution": "1K", "reference_files": [big]}

    refused = owner_client.post(reverse("generate"), {**data, "routing": gemini.pk}, HTTP_HX_REQUEST="true")
    assert "the accounts serving this model take at most 0.0 MB: send fewer or smaller ones" in refused.text
    assert not Generation.objects.exists()

    settings.PUBLIC_BASE_URL = "https://studio.example"
    crun = make_account("crun")
    big.seek(0)
    owner_client.post(reverse("generate"), {**data, "routing": "auto"}, HTTP_HX_REQUEST="true")
    assert Generation.objects.get().account == crun


def test_the_jobs_of_a_set_share_one_inline_payload(owner, owner_client, make_account):
    account = make_account("gemini")
    response = post(owner_client, account, GEMINI_31, [padded(0, 0), padded(1, 0)], count="4")
    assert response.status_code == 201
    requests = [pipeline.provider_request(job) for job in Generation.objects.select_related("account")]
    assert len(requests) == 4 and len(requests[0].reference_images) == 2
    assert all(request.reference_images[0] is requests[0].reference_images[0] for request in requests)
    assert len({id(request.reference_images[1].base64) for request in requests}) == 1, "encoded once"


def test_a_member_over_their_storage_quota_is_refused_with_the_reason(owner, teammate, client, make_account):
    account = make_account("gemini")
    StorageQuota.objects.create(user=owner, megabytes=0)
    client.force_login(owner)
    refused = post(client, account, GEMINI_31, [padded(0, 0)])
    assert "Your uploaded images take 0.0 MB of your 0.0 MB; these need 0.0 MB more" in field_errors(refused.text)
    assert not Generation.objects.exists() and not ReferenceImage.objects.exists()

    client.force_login(teammate)  # another member's room is their own
    assert post(client, account, GEMINI_31, [padded(0, 0)]).status_code == 201
    client.force_login(owner)
    assert post(client, account, GEMINI_31).status_code == 201, "prompts alone need no room"


def test_the_quota_counts_uploads_and_defaults_to_the_setting(owner_client, owner, make_account, settings):
    settings.STORAGE_QUOTA_BYTES = len(png((64, 64))) * 2
    account = make_account("gemini")
    assert post(owner_client, account, GEMINI_31, [padded(0, 0), padded(1, 0)]).status_code == 201
    refused = post(owner_client, account, GEMINI_31, [padded(2, 0)])
    assert "ask staff for more room" in field_errors(refused.text)


def test_staff_see_each_member_s_use_and_change_the_quota(admin_client, owner, make_account):
    member = Client()
    member.force_login(owner)
    assert post(member, make_account("gemini"), GEMINI_31, [padded(0, 0)]).status_code == 201
    quota = StorageQuota.objects.create(user=owner, megabytes=5)
    listing = admin_client.get(reverse("admin:quotas_storagequota_changelist"))
    assert listing.status_code == 200, listing
    listing = listing.text
    assert "0.0 MB of 5 MB" in listing and owner.username in listing  # a 64×64 PNG: 0.0 MB
    response = admin_client.post(
        reverse("admin:quotas_storagequota_change", args=[quota.pk]), {"user": owner.pk, "megabytes": "50"}
    )
    assert response.status_code == 302
    quota.refresh_from_db()
    assert quota.megabytes == 50


def test_members_cannot_reach_the_quota_admin(client, owner, staff):
    client.force_login(owner)
    response = client.get(reverse("admin:quotas_storagequota_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_an_inline_account_has_only_a_share_of_its_calls_in_flight_carrying_references(
    owner, owner_client, make_account, monkeypatch
):
    from nanoweb.lib.ratelimit import RateLimiter
    from nanoweb.studio.jobs import sweep

    account = make_account("gemini")
    account.max_in_flight = 8  # two of them may carry references
    account.save()
    assert post(owner_client, account, GEMINI_31, [padded(0, 0)], count="4").status_code == 201
    assert post(owner_client, account, GEMINI_31, count="2").status_code == 201
    monkeypatch.setattr(pipeline, "limiter", RateLimiter())

    claimed, _ = sweep.claim_due("sweep", limit=20)
    with_references = [job for job, _ in claimed if job.reference_links.exists()]
    assert (len(claimed), len(with_references)) == (4, 2), "both prompts alone, two of the four with a reference"
    for _, permit in claimed:
        permit.release()
