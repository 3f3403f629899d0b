"""Try again, the budget figures and Generate, friendly upload errors, ZIP with nothing chosen."""

from __future__ import annotations

from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from nanoweb.credits import ledger
from nanoweb.credits.models import Budget, LedgerEntry
from nanoweb.providers.base import ErrorKind, ProviderError
from nanoweb.studio import audit
from nanoweb.studio.models import Generation
from tests.conftest import start_job, store_result, succeed
from tests.test_references import png

Status = Generation.Status
Kind = LedgerEntry.Kind


def test_try_again_starts_the_same_job_automatically_with_its_references_and_nothing_charged_for_the_failure(
    owner_client, owner, crun_account
):
    [failed] = start_job(owner, crun_account, "google/nano-banana-2", "a kite at dawn", aspect_ratio="16:9")
    [made] = start_job(owner, crun_account, "google/nano-banana-2", "from a picture", reference_files=[])
    failed.fail(Status.QUEUED, ProviderError(ErrorKind.UNAVAILABLE, "The provider is down."))
    card = owner_client.get(reverse("generation_card", args=[failed.pk]))
    assert "Nothing was charged." in card.text and reverse("try_again", args=[failed.pk]) in card.text

    response = owner_client.post(reverse("try_again", args=[failed.pk]))

    again = Generation.objects.exclude(pk__in=[failed.pk, made.pk]).get()
    assert response.status_code == 302 and response["Location"].endswith(f"#job-{again.pk}")
    assert (again.prompt, again.model_name, again.aspect_ratio, again.automatic, again.status) == (
        "a kite at dawn", failed.model_name, "16:9", True, Status.QUEUED,
    )  # fmt: skip
    lines = LedgerEntry.objects.filter(generation=failed).values_list("kind", flat=True)
    assert sorted(lines) == sorted([Kind.RESERVE, Kind.RELEASE]), "the failure was refunded"
    assert audit.ledger_problems() == []
    assert owner_client.post(reverse("try_again", args=[made.pk])).status_code == 404, "a running job is not retried"


def test_try_again_is_for_the_owner_only(client, owner, teammate, crun_account):
    [failed] = start_job(owner, crun_account, "google/nano-banana-2")
    failed.fail(Status.QUEUED, ProviderError(ErrorKind.UNAVAILABLE, "down"))
    client.force_login(teammate)
    assert client.post(reverse("try_again", args=[failed.pk])).status_code == 404
    assert Generation.objects.count() == 1


def test_the_refusal_quotes_the_whole_submission_and_the_cost_line_never_goes_negative(
    owner_client, owner, crun_account
):
    Budget.objects.create(user=owner, amount=Decimal("0.10"), period="day")
    data = {"prompt": "kites", "routing": crun_account.pk, "model": "Nano Banana 2", "count": "4"}

    refused = owner_client.post(reverse("generate"), data, HTTP_HX_REQUEST="true")
    assert "These 4 images cost 0.268 USD, but you have 0.10 USD left today." in refused.text

    options = owner_client.get(reverse("form_options"), data)
    assert "This submission: <strong>0.268 USD</strong>" in options.text
    assert "Your budget cannot cover this submission: choose fewer images, or ask an admin for a grant." in options.text
    assert 'disabled aria-describedby="generate-reason"' in options.text
    one = owner_client.get(reverse("form_options"), {**data, "count": "1", "resolution": "4K"})
    assert "cannot cover this submission: choose a smaller size, or ask an admin" in one.text
    smallest = owner_client.get(reverse("form_options"), {**data, "count": "1", "resolution": "1K"})
    assert "0.067 USD" in smallest.text and "0.10 USD left" in smallest.text and "cannot cover" not in smallest.text

    LedgerEntry.objects.create(user=owner, kind=Kind.ADJUSTMENT, amount=Decimal("-0.50"), reason="correction")
    page = owner_client.get(reverse("studio"))
    assert "You have 0.00 USD left today" in page.text and "-0." not in page.text

    Budget.objects.filter(user=owner).update(amount=Decimal("10"))
    fine = owner_client.get(reverse("form_options"), data)
    assert "cannot cover" not in fine.text and "disabled" not in fine.text


def test_after_a_submission_the_images_field_is_back_to_one(owner_client, crun_account):
    data = {"prompt": "kites", "routing": crun_account.pk, "model": "Nano Banana 2", "count": "3"}
    created = owner_client.post(reverse("generate"), data, HTTP_HX_REQUEST="true")
    assert created.status_code == 201 and created.text.count("<article") == 1, "one card for the set"
    assert created.text.count('class="variation ') == 3 and "Cancel all" in created.text
    assert created.context["form"]["count"].value() in (1, "1")
    assert 'id="options" class="options" hx-swap-oob="true"' in created.text


def test_an_unreadable_upload_is_named_in_plain_words(owner_client, crun_account):
    upload = SimpleUploadedFile("holiday.png", png()[:-40], content_type="image/png")
    data = {"prompt": "edit it", "routing": crun_account.pk, "model": "Nano Banana 2", "reference_files": [upload]}
    response = owner_client.post(reverse("generate"), data, HTTP_HX_REQUEST="true")
    assert "holiday.png: not a readable image" in response.text
    assert "BytesIO" not in response.text and "<_io" not in response.text and "&lt;_io" not in response.text
    assert not Generation.objects.exists()


def test_a_zip_of_nothing_is_a_page_that_says_what_to_do(owner_client):
    response = owner_client.get(reverse("download_zip"))
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
    assert "Choose images to download" in response.text and reverse("gallery") in response.text


def test_cancel_all_cancels_and_refunds_the_unfinished_jobs_of_the_set_only(client, owner, teammate, crun_account):
    jobs = start_job(owner, crun_account, "google/nano-banana-2", "four kites", count=4)
    [other] = start_job(owner, crun_account, "google/nano-banana-2", "alone")
    succeed(jobs[0])
    client.force_login(teammate)
    assert client.post(reverse("cancel_set", args=[jobs[1].pk])).status_code == 404, "only the owner cancels"
    client.force_login(owner)

    assert client.post(reverse("cancel_set", args=[jobs[1].pk]), HTTP_HX_REQUEST="true").status_code == 204

    statuses = [job.status for job in Generation.objects.filter(pk__in=[j.pk for j in jobs]).order_by("pk")]
    assert statuses == [Status.SUCCEEDED, Status.CANCELED, Status.CANCELED, Status.CANCELED]
    assert Generation.objects.get(pk=other.pk).status == Status.QUEUED, "a job outside the set runs on"
    price = jobs[0].price
    assert ledger.standing(owner).spent == price * 2, "the finished image and the lone job; the three canceled refunded"
    assert audit.ledger_problems() == []


def test_a_budget_shows_as_money(client, staff, owner):
    Budget.objects.create(user=owner, amount=Decimal("10"), period="month")
    client.force_login(staff)
    page = client.get(reverse("credit_review"))
    assert 'value="10.00"' in page.text and "10.0000" not in page.text


def test_variations_show_as_one_set_card_whose_status_and_tiles_the_live_channel_updates(
    client, owner, teammate, crun_account
):
    jobs = start_job(owner, crun_account, "google/nano-banana-2", "four kites", count=4)
    [alone] = start_job(owner, crun_account, "google/nano-banana-2", "alone")
    client.force_login(owner)
    page = client.get(reverse("studio")).text
    assert page.count(f'id="set-{jobs[0].group}"') == 1 and page.count('class="variation ') == 4
    assert f'id="job-{alone.pk}"' in page and "Generating: 0 of 4 done" in page
    assert page.count(">Cancel all</button>") == 1, "one Cancel all, on the set"

    versions = ",".join(f"{job.pk}.{job.version}" for job in Generation.objects.all())  # as the page holds them
    succeed(jobs[0])
    succeed(jobs[1])
    update = client.get(reverse("live_cards"), {"v": versions}).text
    assert update.count(f'id="set-{jobs[0].group}" hx-swap-oob="true"') == 1, "the set once, however many changed"
    assert "Generating: 2 of 4 done" in update and update.count('class="variation status-succeeded"') == 2
    assert f'id="job-{alone.pk}"' not in update

    client.force_login(teammate)  # a teammate sees shared jobs alone, never someone's set controls
    assert client.get(reverse("generation_card", args=[jobs[0].pk])).text.count("Cancel all") == 0


def test_a_finished_result_runs_again_for_its_owner_from_its_card_and_nobody_else(
    client, owner, teammate, crun_account
):
    [done] = start_job(owner, crun_account, "google/nano-banana-2", "a red kite", aspect_ratio="3:2")
    succeed(done)
    store_result(done, png())
    client.force_login(owner)
    card = client.get(reverse("generation_card", args=[done.pk])).text
    assert ">Run again</button>" in card and reverse("try_again", args=[done.pk]) in card
    assert all(f"?{action}={done.pk}" in card for action in ("pick", "from")) and "?download=1" in card

    response = client.post(reverse("try_again", args=[done.pk]))

    again = Generation.objects.exclude(pk=done.pk).get()
    assert response.status_code == 302 and (again.prompt, again.aspect_ratio) == ("a red kite", "3:2")
    client.force_login(teammate)
    assert "Run again" not in client.get(reverse("generation_card", args=[done.pk])).text
    assert client.post(reverse("try_again", args=[done.pk])).status_code == 404
    assert Generation.objects.count() == 2


def test_a_cards_actions_are_the_owners_and_teammates_get_only_what_they_may_do(client, owner, teammate, crun_account):

    [done, failed, running] = [start_job(owner, crun_account, "google/nano-banana-2", p)[0] for p in "abc"]
    succeed(done)
    store_result(done, png())
    failed.fail(Status.QUEUED, ProviderError(ErrorKind.GENERATION_FAILED, "no"))
    studio = reverse("studio")
    client.force_login(owner)
    detail = client.get(reverse("generation_detail", args=[done.pk])).text
    assert all(f"{studio}?{action}={done.pk}" in detail for action in ("pick", "from"))
    assert '?download=1" download>Download<' in detail
    assert "Delete</button>" in detail and "make private" in detail
    assert "Try again</button>" in client.get(reverse("generation_card", args=[failed.pk])).text
    assert ">Cancel</button>" in client.get(reverse("generation_card", args=[running.pk])).text

    client.force_login(teammate)
    detail = client.get(reverse("generation_detail", args=[done.pk])).text
    assert all(f"{studio}?{action}={done.pk}" in detail for action in ("pick", "from"))
    assert '?download=1" download>Download<' in detail
    assert "Delete</button>" not in detail and "make private" not in detail, "the owner's to delete or hide"
    assert "Try again" not in client.get(reverse("generation_card", args=[failed.pk])).text
    assert ">Cancel</button>" not in client.get(reverse("generation_card", args=[running.pk])).text
    assert f'data-pick="{done.pk}"' in client.get(reverse("gallery")).text, "open in the lightbox from the gallery"

    Generation.objects.filter(pk=done.pk).update(private=True)
    assert client.get(reverse("generation_detail", args=[done.pk])).status_code == 404
    assert client.get(reverse("generation_card", args=[done.pk])).status_code == 404
    assert f'data-pick="{done.pk}"' not in client.get(reverse("gallery")).text, "private stays private"
