"""Batches: a list of prompts checked and priced before it runs, side by side comparisons,
fair share between interactive jobs and batches, and half price through Gemini's Batch API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from nanoweb.batches import rows as batch_rows
from nanoweb.batches import service, vendor
from nanoweb.batches.models import Batch, VendorBatch
from nanoweb.credits import ledger
from nanoweb.credits.models import Budget, LedgerEntry
from nanoweb.lib.ratelimit import RateLimiter
from nanoweb.providers.models import Attempt, ProviderAccount
from nanoweb.studio import audit
from nanoweb.studio.jobs import finishing, pipeline, sweep
from nanoweb.studio.models import Generation
from tests.conftest import start_job, wait_for
from tests.test_providers import run_to_end

Status = Generation.Status


@pytest.fixture
def gemini(make_account):
    account = make_account("gemini")
    ProviderAccount.objects.filter(pk=account.pk).update(rate_limit=1000)
    account.refresh_from_db()
    return account


def upload(client, text: str | bytes, *, run: bool = False, **fields):
    data = text.encode() if isinstance(text, str) else text
    post = {"model": "Nano Banana 2.1", "file": SimpleUploadedFile("list.csv", data, "text/csv"), **fields}
    if run:
        post["run"] = "1"
    return client.post(reverse("new_batch"), post)


def nothing_stored():
    return not Generation.objects.exists() and not Batch.objects.exists() and not LedgerEntry.objects.exists()


# --- the list's checks ----------------------------------------------------------------


def test_a_csv_is_previewed_row_by_row_with_its_total_and_what_the_budget_leaves(owner_client, gemini):
    csv = "prompt,model,resolution,count\na red kite,,2K,2\na blue kite,Nano Banana Pro,4K,1\na green kite,Nano Banana 2 Lite,,\n"
    response = upload(owner_client, csv)
    assert response.status_code == 200
    page = response.text
    assert 'id="row-2"' in page and 'id="row-4"' in page
    # 2 × 0.101 + 0.24 + 0.034 = 0.476
    assert "Total: <strong>0.476 USD</strong> for 4 images" in page
    assert "You have 20.00 USD left; this leaves 19.524 USD." in page
    assert "Run 4 images for 0.476 USD" in page
    assert nothing_stored()


@pytest.mark.parametrize(
    "csv, message",
    [
        ("text,model\na kite,\n", "Line 1: unknown column text"),
        ("model\nNano Banana\n", "Line 1: no prompt column"),
        ("prompt,model\na kite,Nano Banana 9\n", "Line 2: unknown model &#x27;Nano Banana 9&#x27;"),
        (
            "prompt,model,resolution\na kite,Nano Banana 2 Lite,4K\n",
            "Line 2: Nano Banana 2 Lite offers no resolution 4K",
        ),
        ("prompt,aspect_ratio\nfine\na kite,2:7\n", "Line 3: Nano Banana 2.1 offers no aspect ratio 2:7"),
        ("prompt,count\na kite,5\n", "Line 2: count &#x27;5&#x27;: 1 to 4 images"),
        ("prompt,references\na kite,99999\n", "Line 2: references: give the numbers of earlier results"),
        ("prompt,board\na kite,Nowhere\n", "Line 2: no board named &#x27;Nowhere&#x27;"),
    ],
)
def test_a_wrong_row_or_header_is_shown_with_its_line_and_nothing_runs(owner_client, gemini, csv, message):
    response = upload(owner_client, csv, run=True)
    assert response.status_code == 400
    assert message in response.text
    assert "Run " not in response.text.split('id="preview"')[0].split("Check and price")[1]
    assert nothing_stored()


def test_a_row_over_the_models_reference_limit_is_refused(owner, owner_client, gemini):
    [earlier] = start_job(owner, gemini, "gemini-nano-banana-2.1", "earlier")
    earlier = run_to_end(earlier)
    image = earlier.images.get().pk
    csv = f"prompt,model,references\nfour refs,Nano Banana 2 Lite,{image} {image} {image} {image}\n"
    response = upload(owner_client, csv, run=True)
    assert "Line 2: Nano Banana 2 Lite offers at most 3 reference images" in response.text
    assert Generation.objects.count() == 1


def test_501_rows_are_refused_whole(owner_client, gemini):
    response = upload(owner_client, "prompt\n" + "".join(f"kite {n}\n" for n in range(501)), run=True)
    assert "More than 500 rows" in response.text and "line 502 is row 501" in response.text
    assert nothing_stored()


@pytest.mark.parametrize(
    "data, message",
    [(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "The file is not text"), (b"prompt\n\xff\xfekite\n", "not UTF-8 text")],
)
def test_a_file_that_is_not_text_is_refused(owner_client, gemini, data, message):
    response = upload(owner_client, data, run=True)
    assert response.status_code == 400 and message in response.text
    assert nothing_stored()


def test_a_list_over_budget_is_refused_whole(owner, owner_client, gemini):
    Budget.objects.create(user=owner, amount=Decimal("0.30"), period="month")
    prompts = "\n".join(f"kite {n}" for n in range(5))  # 5 × 0.067 = 0.335
    response = owner_client.post(reverse("new_batch"), {"prompts": prompts, "model": "Nano Banana 2.1", "run": "1"})
    assert response.status_code == 400
    assert "These 5 images cost 0.335 USD, but you have 0.30 USD left" in response.text
    assert nothing_stored()


# --- running a list -------------------------------------------------------------------


def run_batch(batch: Batch) -> None:
    for job in Generation.objects.filter(batch_item__batch=batch):
        run_to_end(job)


def test_pasted_prompts_run_as_one_batch_charged_what_the_preview_showed(owner, owner_client, gemini):
    prompts = "a kite\n\na second kite\na third kite"
    preview = owner_client.post(reverse("new_batch"), {"prompts": prompts, "model": "Nano Banana 2.1"})
    assert "Total: <strong>0.201 USD</strong> for 3 images" in preview.text
    response = owner_client.post(
        reverse("new_batch"), {"source": prompts, "mode": "lines", "model": "Nano Banana 2.1", "run": "1"}
    )
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == batch.get_absolute_url()
    assert sorted(batch.items.values_list("line", flat=True)) == [1, 3, 4]
    assert set(Generation.objects.values_list("lane", flat=True)) == {Generation.LIST}
    page = owner_client.get(batch.get_absolute_url()).text
    assert "0 done" in page and "3 waiting" in page

    run_batch(batch)
    progress = owner_client.get(reverse("batch_progress", args=[batch.pk]))
    assert progress.status_code == 286  # finished: the page stops polling
    assert "3 done" in progress.text and 'Cost so far: <strong id="batch-charged">0.201 USD</strong>' in progress.text
    assert service.progress(batch).charged == service.cost_total(batch) == Decimal("0.201")
    assert audit.ledger_problems() == []


def test_a_batchs_zip_holds_its_results_with_their_metadata(owner, owner_client, gemini):
    batch = service.create_batch(
        owner=owner, rows=batch_rows.from_lines("one\ntwo"), defaults=batch_rows.Defaults("Nano Banana 2.1")
    )
    run_batch(batch)
    response = owner_client.get(reverse("batch_zip", args=[batch.pk]))
    import io
    import json
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    metadata = json.loads(archive.read("metadata.json"))
    assert [m["prompt"] for m in metadata] == ["one", "two"]
    assert all(m["model_name"] == "Nano Banana 2.1" and m["cost"] == "0.067" for m in metadata)
    assert len(archive.namelist()) == 3


def test_cancel_stops_what_has_not_started_and_refunds_it(owner, owner_client, gemini, teammate, staff):
    batch = service.create_batch(
        owner=owner, rows=batch_rows.from_lines("a\nb\nc"), defaults=batch_rows.Defaults("Nano Banana 2.1")
    )
    staff_client = Client()
    staff_client.force_login(staff)
    assert "Cancel the 3 not started" in staff_client.get(batch.get_absolute_url()).content.decode(), "staff too"
    first = Generation.objects.filter(batch_item__batch=batch).order_by("pk").first()
    run_to_end(first)
    other = Client()
    other.force_login(teammate)
    assert other.post(reverse("cancel_batch", args=[batch.pk])).status_code == 404
    owner_client.post(reverse("cancel_batch", args=[batch.pk]))
    progress = service.progress(batch)
    assert (progress.done, progress.failed, progress.waiting, progress.charged) == (1, 2, 0, Decimal("0.067"))
    assert audit.ledger_problems() == []


def test_a_batch_puts_its_results_on_the_chosen_board(owner, owner_client, gemini):
    from nanoweb.boards.models import Board

    board = Board.objects.create(name="Kites", owner=owner)
    owner_client.post(
        reverse("new_batch"), {"prompts": "kite\nkite 2", "model": "Nano Banana 2.1", "board": board.pk, "run": "1"}
    )
    assert board.items.count() == 2


def test_other_members_cannot_see_a_batch(owner, gemini, client, teammate):
    batch = service.create_batch(
        owner=owner, rows=batch_rows.from_lines("a"), defaults=batch_rows.Defaults("Nano Banana 2.1")
    )
    client.force_login(teammate)
    assert client.get(batch.get_absolute_url()).status_code == 404
    assert client.get(reverse("batch_zip", args=[batch.pk])).status_code == 404


# --- side by side ---------------------------------------------------------------------


def test_one_prompt_on_three_models_comes_back_as_one_set_labelled_with_model_cost_and_time(owner_client, gemini):
    response = owner_client.post(
        reverse("generate"),
        {"prompt": "a lighthouse", "model": "Nano Banana 2.1", "routing": "auto", "resolution": "1K",
         "compare_with": ["Nano Banana Pro", "Nano Banana 2 Lite"]},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 201
    jobs = list(Generation.objects.order_by("pk"))
    assert [job.model_name for job in jobs] == ["Nano Banana 2.1", "Nano Banana Pro", "Nano Banana 2 Lite"]
    assert len({job.group for job in jobs}) == 1 and jobs[0].group is not None
    assert Batch.objects.get().kind == Batch.Kind.COMPARE
    for job in jobs:
        run_to_end(job)
    card = owner_client.get(reverse("generation_card", args=[jobs[0].pk])).text
    for label in (
        "Nano Banana 2.1 · 0.067 USD · ",
        "Nano Banana Pro · 0.134 USD · ",
        "Nano Banana 2 Lite · 0.034 USD · ",
    ):
        assert label in card
    assert "All 3 made" in card


def test_side_by_side_refuses_a_model_that_lacks_the_chosen_options(owner_client, gemini):
    response = owner_client.post(
        reverse("generate"),
        {"prompt": "a lighthouse", "model": "Nano Banana 2.1", "routing": "auto", "resolution": "4K",
         "compare_with": ["Nano Banana 2 Lite"]},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert "Nano Banana 2 Lite: no resolution 4K" in response.text
    assert nothing_stored()


# --- fair share -----------------------------------------------------------------------


def test_interactive_jobs_go_first_and_batches_take_turns_between_owners(owner, outsider, teammate, gemini):
    defaults = batch_rows.Defaults("Nano Banana 2.1")
    service.create_batch(
        owner=owner, rows=batch_rows.from_lines("\n".join(f"o{n}" for n in range(30))), defaults=defaults
    )
    service.create_batch(
        owner=outsider, rows=batch_rows.from_lines("\n".join(f"x{n}" for n in range(30))), defaults=defaults
    )
    [single] = start_job(teammate, gemini, "gemini-nano-banana-2.1", "a teammate's single image")

    claimed, _ = sweep.claim_due("fair", limit=100, call_limit=100)
    jobs = [job for job, _ in claimed]
    assert single.pk in [job.pk for job in jobs]
    batch_jobs = [job for job in jobs if job.lane]
    # 16 calls in flight at most; batches leave a quarter of them for interactive jobs.
    assert len(batch_jobs) == 16 - 4 - 1
    owners = [job.owner_id for job in batch_jobs]
    assert abs(owners.count(owner.pk) - owners.count(outsider.pk)) <= 1


def test_batch_rows_leave_room_for_a_teammate_even_when_they_fill_the_account(owner, teammate, gemini):
    defaults = batch_rows.Defaults("Nano Banana 2.1")
    service.create_batch(
        owner=owner, rows=batch_rows.from_lines("\n".join(f"o{n}" for n in range(40))), defaults=defaults
    )
    first, _ = sweep.claim_due("fair", limit=100, call_limit=100)
    assert len(first) == 12
    calls_out = {"status": Status.RUNNING, "due_at": timezone.now() + timedelta(minutes=1)}  # held by their calls
    Generation.objects.filter(pk__in=[job.pk for job, _ in first]).update(**calls_out)
    [single] = start_job(teammate, gemini, "gemini-nano-banana-2.1", "mine")
    second, _ = sweep.claim_due("fair-2", limit=100, call_limit=100)
    assert [job.pk for job, _ in second] == [single.pk]


# --- the vendor's batch at half price -------------------------------------------------


def follow_to_end(job: Generation) -> Generation:
    def final():
        job.refresh_from_db()
        if job.status == Status.FINISHING:
            finishing.finish(job.pk)
        elif not job.is_terminal:
            pipeline.follow(Generation.objects.select_related("account").get(pk=job.pk))
        job.refresh_from_db()
        return job.is_terminal

    wait_for(final, timeout=20, interval=0.1)
    return job


def test_a_cheaper_batch_goes_through_the_batch_api_at_half_price(owner, owner_client, gemini, simulator):
    csv = "prompt,resolution\n" + "".join(f"harbour {n},{'4K' if n < 6 else '1K'}\n" for n in range(10))
    preview = upload(owner_client, csv, cheaper="on")
    # 6 × 0.151 / 2 + 4 × 0.067 / 2 = 0.4530 + 0.1340
    assert "Total: <strong>0.587 USD</strong> for 10 images" in preview.text
    upload(owner_client, csv, cheaper="on", run=True)
    batch = Batch.objects.get()
    assert batch.cheaper
    vendor.send(batch.pk)  # the task the batch's creation enqueued
    # 4K images are large (about 24 MB each in the answer): six of them do not fit one vendor batch of 100 MB.
    assert VendorBatch.objects.filter(batch=batch).count() == 2
    jobs = list(Generation.objects.filter(batch_item__batch=batch))
    assert {job.status for job in jobs} == {Status.SUBMITTED}
    assert all(job.provider_task_id.startswith("batches/") for job in jobs)
    for job in jobs:
        follow_to_end(job)
    assert {job.status for job in jobs} == {Status.SUCCEEDED}
    charged = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SETTLE).values_list("generation__resolution", "amount")
    assert sorted({(res, amount) for res, amount in charged}) == [("1K", Decimal("0.0335")), ("4K", Decimal("0.0755"))]
    assert service.progress(batch).charged == Decimal("0.587")
    assert audit.ledger_problems() == []
    sent = [r for r in simulator.requests if r.path.endswith(":batchGenerateContent")][-1].json()
    assert sent["batch"]["input_config"]["requests"]["requests"][0]["request"]["store"] is False


def test_a_cheaper_batch_cancelled_is_refunded_and_cancelled_at_the_vendor(owner, owner_client, gemini, simulator):
    simulator.latency = 30
    batch = service.create_batch(
        owner=owner, rows=batch_rows.from_lines("a\nb"), defaults=batch_rows.Defaults("Nano Banana 2.1"), cheaper=True
    )
    vendor.send(batch.pk)
    owner_client.post(reverse("cancel_batch", args=[batch.pk]))
    assert set(Generation.objects.values_list("status", flat=True)) == {Status.CANCELED}
    sent = VendorBatch.objects.get()
    from nanoweb.providers.simulator.protocols import gemini as sim_gemini

    assert sim_gemini.batches_of(simulator)[sent.name].state == "BATCH_STATE_CANCELLED"
    assert audit.ledger_problems() == [] and service.progress(batch).charged == 0


def test_a_model_no_account_offers_by_batch_is_refused_for_a_cheaper_batch(owner_client, crun_account):
    response = owner_client.post(
        reverse("new_batch"), {"prompts": "kite", "model": "Nano Banana 2", "cheaper": "on", "run": "1"}
    )
    assert "no account offers Nano Banana 2 through a vendor" in response.text
    assert nothing_stored()


def test_a_cheaper_batch_outlives_the_studios_job_deadline_but_a_list_row_does_not(owner, gemini, settings):
    defaults = batch_rows.Defaults("Nano Banana 2.1")
    cheaper = service.create_batch(owner=owner, rows=batch_rows.from_lines("slow"), defaults=defaults, cheaper=True)
    vendor.send(cheaper.pk)
    normal = service.create_batch(owner=owner, rows=batch_rows.from_lines("quick"), defaults=defaults)
    Generation.objects.update(created_at=timezone.now() - timedelta(seconds=settings.JOB_DEADLINE_SECONDS + 60))
    sweep.reconcile()
    assert Generation.objects.get(batch_item__batch=cheaper).status == Status.SUBMITTED
    assert Generation.objects.get(batch_item__batch=normal).status == Status.FAILED


def test_a_cheaper_batch_whose_sending_task_was_lost_is_sent_by_the_safety_net(owner, gemini):
    service.create_batch(
        owner=owner, rows=batch_rows.from_lines("a\nb"), defaults=batch_rows.Defaults("Nano Banana 2.1"), cheaper=True
    )
    assert vendor.send_waiting() == 0  # not late yet: its own task sends it
    Generation.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert vendor.send_waiting() == 1
    assert set(Generation.objects.values_list("status", flat=True)) == {Status.SUBMITTED}
    assert vendor.send_waiting() == 0 and VendorBatch.objects.count() == 1


def test_a_cheaper_batch_cut_off_while_sending_is_never_sent_again_one_by_one(owner, gemini):
    """Its attempts are recorded as the vendor batch leaves: a job with one may be in the vendor's
    batch, so a dead sender's jobs end refunded rather than go out again at Gemini's full call."""
    batch = service.create_batch(
        owner=owner, rows=batch_rows.from_lines("a\nb"), defaults=batch_rows.Defaults("Nano Banana 2.1"), cheaper=True
    )
    vendor.send(batch.pk)
    assert set(Attempt.objects.values_list("outcome", flat=True)) == {Attempt.Outcome.ACCEPTED}
    assert Attempt.objects.count() == 2

    Generation.objects.update(status=Status.SUBMITTING, claim="dead", due_at=timezone.now() - timedelta(seconds=1))
    Attempt.objects.update(outcome=Attempt.Outcome.SENDING)  # as if the sender died before the vendor's answer
    for job in Generation.objects.select_related("account"):
        sweep.recover_held(job, "new-sweep")

    assert set(Generation.objects.values_list("status", flat=True)) == {Status.FAILED}
    assert audit.ledger_problems() == []


def test_side_by_side_ignores_the_chosen_model_in_the_list(owner_client, gemini):
    response = owner_client.post(
        reverse("generate"),
        {"prompt": "a lighthouse", "model": "Nano Banana 2.1", "routing": "auto", "resolution": "1K",
         "compare_with": ["Nano Banana 2.1", "Nano Banana Pro"]},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 201
    assert sorted(Generation.objects.values_list("model_name", flat=True)) == ["Nano Banana 2.1", "Nano Banana Pro"]


def test_anonymous_visitors_are_sent_to_sign_in_from_every_batch_page(client, owner, gemini):
    batch = service.create_batch(
        owner=owner, rows=batch_rows.from_lines("a"), defaults=batch_rows.Defaults("Nano Banana 2.1")
    )
    for name, args in [
        ("new_batch", []),
        ("batch", [batch.pk]),
        ("batch_progress", [batch.pk]),
        ("batch_zip", [batch.pk]),
    ]:
        response = client.get(reverse(name, args=args))
        assert response.status_code == 302 and response["Location"].startswith("/login"), name
    assert client.post(reverse("cancel_batch", args=[batch.pk])).status_code == 302
    assert Generation.objects.get().status == Status.QUEUED


def test_the_reads_of_a_vendors_batch_never_hold_back_a_teammates_image(owner, teammate, gemini, monkeypatch):
    monkeypatch.setattr(pipeline, "limiter", RateLimiter())  # this account's requests only
    ProviderAccount.objects.filter(pk=gemini.pk).update(rate_limit=5)
    batch = service.create_batch(
        owner=owner, rows=batch_rows.from_lines("\n".join(f"v{n}" for n in range(40))),
        defaults=batch_rows.Defaults("Nano Banana 2.1"), cheaper=True,
    )  # fmt: skip
    vendor.send(batch.pk)
    long_ago = timezone.now() - timedelta(minutes=5)  # sent a while ago: reads are due
    Generation.objects.filter(lane=Generation.VENDOR).update(due_at=long_ago, submitted_at=long_ago)
    [single] = start_job(teammate, gemini, "gemini-nano-banana-2.1", "mine")

    claimed, _ = sweep.claim_due("reads", limit=100, call_limit=100)
    jobs = [job for job, _ in claimed]
    # Forty reads are due and the account's rate limit leaves room for a few: the teammate's goes first.
    assert single.pk in [job.pk for job in jobs] and 1 < len(jobs) <= 5


def test_the_studio_form_prices_a_side_by_side_set_whole(owner_client, gemini):
    query = {"model": "Nano Banana 2.1", "routing": "auto", "resolution": "1K",
             "compare_with": ["Nano Banana Pro", "Nano Banana 2 Lite"]}  # fmt: skip
    options = owner_client.get(reverse("form_options"), query).text
    assert "This submission: <strong>0.235 USD</strong>" in options  # 0.067 + 0.134 + 0.034
    assert 'value="Nano Banana Pro" id="id_compare_with_' in options and "checked" in options


@pytest.mark.parametrize(
    "listed, batch",
    [("0.067", "0.0335"), ("0.151", "0.0755"), ("0.24", "0.12"), ("0.0001", "0.0001"), ("0.0003", "0.0002")],
)
def test_the_ledger_prices_a_vendor_batch_image_at_half_rounded_up_to_its_four_decimals(listed, batch):
    assert ledger.vendor_batch_price(Decimal(listed)) == Decimal(batch)


def test_a_batchs_rows_stay_on_its_page_not_in_the_studios_recent_work(owner, owner_client, gemini):
    start_job(owner, gemini, "gemini-nano-banana-2.1", "my own single image")
    service.create_batch(
        owner=owner, rows=batch_rows.from_lines("row one\nrow two"), defaults=batch_rows.Defaults("Nano Banana 2.1")
    )
    studio = owner_client.get(reverse("studio")).text
    assert "my own single image" in studio and "row one" not in studio
    batch_page = owner_client.get(Batch.objects.get().get_absolute_url()).text
    assert "row one" in batch_page and "row two" in batch_page


def test_submits_claimed_but_not_started_count_against_the_accounts_calls_in_flight(owner, gemini):
    defaults = batch_rows.Defaults("Nano Banana 2.1")
    service.create_batch(
        owner=owner, rows=batch_rows.from_lines("\n".join(f"o{n}" for n in range(40))), defaults=defaults
    )
    first, _ = sweep.claim_due("busy", limit=100, call_limit=100)
    assert len(first) == 12
    # Under load the claimed submits wait for their threads: the next tick must not claim more.
    again, _ = sweep.claim_due("busy", limit=100, call_limit=100)
    assert again == []
