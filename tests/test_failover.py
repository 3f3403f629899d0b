"""Routing, failover, visible retries and pausing, step by step against the simulator (no worker)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from nanoweb.credits import ledger
from nanoweb.credits.models import Budget, LedgerEntry
from nanoweb.providers import routing
from nanoweb.providers.models import Attempt, Options
from nanoweb.studio import audit
from nanoweb.studio.jobs import finishing, pipeline
from nanoweb.studio.jobs.spec import JobSpec
from nanoweb.studio.models import Generation

Status = Generation.Status


@pytest.fixture
def two_accounts(make_account):
    """crun first (priority 1), the Gemini API second; both serve Nano Banana 2."""

    def make(crun_faults: str = "", gemini_price: str = "0.08"):
        crun = make_account("crun", faults=crun_faults, name="crun")
        crun.priority = 1
        crun.save()
        gemini = make_account("gemini", name="gemini")
        row = gemini.catalogue.get(model_id="gemini-3.1-flash-image")
        row.prices = {**row.prices, "1K": gemini_price}
        row.save()
        return crun, gemini

    return make


def start(owner, account=None, **options) -> Generation:
    spec = JobSpec(prompt="a lighthouse", model_name="Nano Banana 2", options=Options(resolution="1K", **options),
                   account=account.pk if account else None)  # fmt: skip
    [job] = pipeline.start(owner=owner, spec=spec)
    return job


def submit(job: Generation) -> Generation:
    """One sweep step on the job (it must be due) and, if the provider answered with the image,
    the finishing task a worker would run; then its fresh state."""
    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))
    job.refresh_from_db()
    if job.status == Status.FINISHING:
        finishing.finish(job.pk)
        job.refresh_from_db()
    return job


def outcomes(job: Generation) -> list[tuple[str, str, str]]:
    return list(job.attempt_log.values_list("account__name", "outcome", "error_kind"))


def test_routing_orders_by_priority_then_price_and_skips_paused_and_unfit_accounts(owner, make_account):
    crun, gemini, nanophoto = make_account("crun"), make_account("gemini"), make_account("nanophoto")
    nb2 = Options(aspect_ratio="16:9", resolution="1K")
    rows = [(row.account.kind, row.model_id) for row in routing.candidates(routing.Need("Nano Banana 2", nb2))]
    assert rows == [
        ("crun", "google/nano-banana-2"), ("crun", "google/nano-banana-2-v2"),  # its second channel, a row
        ("gemini", "gemini-3.1-flash-image"), ("nanophoto", "nano-banana-2"),
    ], "equal priority and price: by name"  # fmt: skip

    gemini.priority = 1
    gemini.save()
    nanophoto.catalogue.filter(name="Nano Banana 2").update(prices={"1K": "0.01", "2K": "0.1", "4K": "0.2"})
    kinds = [row.account.kind for row in routing.candidates(routing.Need("Nano Banana 2", nb2))]
    assert kinds == ["gemini", "nanophoto", "crun", "crun"]

    crun.pause("out of credit")
    square = Options(aspect_ratio="1:1", resolution="1K")
    assert [row.account.kind for row in routing.candidates(routing.Need("Nano Banana 2", square))] == ["gemini"]
    assert routing.candidates(routing.Need("Nano Banana 2", nb2, account=crun.pk)) == []


def test_a_refused_create_moves_the_same_job_to_the_next_account_at_its_price(owner, two_accounts):
    crun, gemini = two_accounts(crun_faults="+error=402", gemini_price="0.08")
    job = start(owner)
    assert (job.account, job.price) == (crun, Decimal("0.067")), "reserved at the first account's price"

    job = submit(job)
    assert (job.status, job.account, job.price) == (Status.QUEUED, gemini, Decimal("0.08"))
    assert job.waiting_line == "crun is out of credit; trying another account"
    crun.refresh_from_db()
    assert crun.paused and "out of credit" in crun.paused_reason
    assert audit.ledger_problems() == []

    job = submit(job)
    assert job.status == Status.SUCCEEDED, job.error_detail
    assert outcomes(job) == [("crun", "moved", "out_of_credit"), ("gemini", "succeeded", "")]
    charges = job.ledger.filter(kind=LedgerEntry.Kind.SETTLE).values_list("amount", flat=True)
    assert list(charges) == [Decimal("0.08")], "charged once, at the serving account's price"
    assert audit.ledger_problems() == []


def test_a_cheaper_serving_account_refunds_the_difference_at_once(owner, two_accounts):
    two_accounts(crun_faults="+error=401", gemini_price="0.05")
    job = submit(start(owner))
    assert job.price == Decimal("0.05")
    assert job.ledger.get(kind=LedgerEntry.Kind.RELEASE).amount == Decimal("0.017")
    assert audit.ledger_problems() == []


def test_a_dearer_account_beyond_the_budget_is_skipped_and_the_job_fails_refunded(owner, two_accounts):
    Budget.objects.create(user=owner, amount=Decimal("0.07"), period="day")
    two_accounts(crun_faults="+error=402", gemini_price="0.5")
    job = submit(start(owner))
    assert (job.status, job.error_kind) == (Status.FAILED, "out_of_credit")
    assert "crun said: HTTP 402" in job.error_message
    assert ledger.standing(owner).spent == 0 and audit.ledger_problems() == []


@pytest.mark.parametrize("faults, kind", [("+error=429", "rate_limited"), ("+error=455", "unavailable")])
def test_rate_limits_without_a_near_retry_and_maintenance_fail_over_at_once(owner, two_accounts, faults, kind):
    crun, gemini = two_accounts(crun_faults=faults)
    job = submit(start(owner))
    assert (job.status, job.account) == (Status.QUEUED, gemini)
    assert outcomes(job) == [("crun", "moved", kind)]
    crun.refresh_from_db()
    assert not crun.paused, "only a bad key or no credit pauses an account"


def test_a_near_retry_after_waits_on_the_same_account_and_the_card_says_so(owner, owner_client, make_account):
    crun = make_account("crun", faults="+errors=429,429+retry_after=7", name="crun")
    job = submit(start(owner))

    assert (job.status, job.account, job.attempts) == (Status.QUEUED, crun, 1)
    assert 6 <= (job.due_at - timezone.now()).total_seconds() <= 7
    card = owner_client.get(reverse("generation_card", args=[job.pk])).text
    assert "crun is rate-limiting us; trying again in 7 s, attempt 2 of 6" in card


def test_a_job_pinned_to_an_account_does_not_move(owner, two_accounts):
    crun, _ = two_accounts(crun_faults="+error=402")
    job = submit(start(owner, account=crun))
    assert (job.status, job.error_kind, job.account) == (Status.FAILED, "out_of_credit", crun)


def test_an_ambiguous_create_is_never_sent_again_where_the_provider_cannot_dedupe(owner, two_accounts, settings):
    """A timeout after sending: the provider may have started (and will bill) the job."""
    settings.OUTBOUND_TIMEOUT = 0.5
    two_accounts(crun_faults="+slow=1.5")
    job = submit(start(owner))

    assert (job.status, job.error_kind, job.attempt_log.count()) == (Status.FAILED, "unavailable", 1)
    assert "not sent again: the provider may have started the job" in job.error_message
    assert ledger.standing(owner).spent == 0 and audit.ledger_problems() == []


def test_a_500_after_sending_is_ambiguous_and_a_deduping_provider_is_asked_again(owner, make_account, two_accounts):
    crun, gemini = two_accounts(crun_faults="+error=500")
    failed = submit(start(owner))
    assert (failed.status, failed.attempt_log.count()) == (Status.FAILED, 1), "never replayed on gemini"

    crun.enabled = gemini.enabled = False
    crun.save()
    gemini.save()
    apiframe = make_account("apiframe", faults="+errors=500")
    spec = JobSpec(prompt="p", model_name="Nano Banana 2", options=Options(resolution="1K"))
    [job] = pipeline.start(owner=owner, spec=spec)
    job = submit(job)
    assert (job.status, job.account, job.waiting_reason) == (Status.QUEUED, apiframe, "apiframe (sim) is unavailable")
    Generation.objects.filter(pk=job.pk).update(due_at=timezone.now())
    job = submit(job)
    assert job.status == Status.SUBMITTED, "the same idempotency key: at most one job at the provider"


def test_create_retries_end_within_the_window_with_the_providers_last_words(owner, make_account, settings):
    settings.CREATE_RETRY_ATTEMPTS = 3
    make_account("crun", faults="+error=455", name="crun")
    job = submit(start(owner))
    while job.status == Status.QUEUED:
        assert "crun is unavailable; trying again in" in job.waiting_line
        Generation.objects.filter(pk=job.pk).update(due_at=timezone.now())  # skip the wait
        job = submit(job)

    assert (job.status, job.attempts, job.error_kind) == (Status.FAILED, 3, "unavailable")
    assert job.error_message.endswith("crun said: HTTP 455, code 455: Service under maintenance")
    assert [o for _, o, _ in outcomes(job)] == ["retried", "retried", "failed"]
    assert audit.ledger_problems() == []


def test_no_retry_is_scheduled_beyond_the_retry_window(owner, make_account, settings):
    settings.CREATE_RETRY_SECONDS = 0
    make_account("crun", faults="+error=429")
    job = submit(start(owner))
    assert (job.status, job.attempts, job.error_kind) == (Status.FAILED, 1, "rate_limited")


def test_a_blocked_address_is_a_configuration_error_never_retried(owner, two_accounts, settings):
    settings.ALLOW_PRIVATE_OUTBOUND = False
    two_accounts()
    job = submit(start(owner))
    assert job.status == Status.QUEUED, "crun's address is refused: gemini is tried at once"
    job = submit(job)
    assert (job.status, job.error_kind) == (Status.FAILED, "blocked_address")
    assert [o for _, o, _ in outcomes(job)] == ["moved", "failed"]
    assert "ask an admin" in job.error_message


def test_a_shut_down_model_id_moves_on_and_says_the_catalogue_needs_care(owner, two_accounts):
    _, gemini = two_accounts(crun_faults="+error=402")
    # A catalogue nobody kept current: the old preview id, which Google shut down.
    gemini.catalogue.filter(model_id="gemini-3.1-flash-image").update(enabled=False)
    gemini.catalogue.filter(model_id="gemini-3.1-flash-image-preview").update(
        name="Nano Banana 2", enabled=True, shutdown_on=None
    )
    job = submit(submit(start(owner)))
    assert (job.status, job.error_kind) == (Status.FAILED, "unknown_model")
    assert "update the catalogue" in job.error_message


def test_staff_see_a_paused_account_on_a_banner_and_resume_it(client, owner, staff, make_account):
    crun = make_account("crun")
    crun.pause("The provider account is out of credit: ask an admin. (HTTP 402, code 402: Insufficient credits)")

    client.force_login(owner)
    assert "is paused" not in client.get(reverse("studio")).text
    assert client.post(reverse("resume_account", args=[crun.pk])).status_code == 403

    client.force_login(staff)
    page = client.get(reverse("studio")).text
    assert "crun (sim) is paused" in page and "Insufficient credits" in page
    response = client.post(reverse("resume_account", args=[crun.pk]), {"next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    crun.refresh_from_db()
    assert not crun.paused
    assert "is paused" not in client.get(reverse("studio")).text


def test_a_paused_account_is_not_routed_to_and_cannot_be_picked_by_hand(owner_client, make_account):
    crun, gemini = make_account("crun"), make_account("gemini")
    crun.pause("bad key")
    data = {"prompt": "p", "model": "Nano Banana 2", "resolution": "1K"}

    refused = owner_client.post(reverse("generate"), {**data, "routing": crun.pk}, HTTP_HX_REQUEST="true")
    assert "That account is not available: choose Automatic or one of the listed accounts." in refused.text
    assert "bad key" not in refused.text, "why an account was paused is for staff"
    assert not Generation.objects.exists()

    owner_client.post(reverse("generate"), {**data, "routing": "auto"}, HTTP_HX_REQUEST="true")
    assert Generation.objects.get().account == gemini


def test_attempts_are_listed_on_the_detail_page(owner, owner_client, two_accounts):
    two_accounts(crun_faults="+error=402")
    job = submit(submit(start(owner)))
    page = owner_client.get(job.get_absolute_url()).text
    assert "Moved to another account" in page and "HTTP 402, code 402: Insufficient credits" in page
    assert page.count('<tr class="outcome-') == 2
    assert Attempt.objects.filter(generation=job, outcome="succeeded").exists()


def test_jobs_queued_on_an_account_that_gets_paused_move_on_without_asking_it(owner, two_accounts, simulator):
    crun, gemini = two_accounts(crun_faults="+error=402")
    first, second = (start(owner) for _ in range(2))
    submit(first)  # crun answers 402 and is paused
    creates = sum(r.path.endswith("CreateTask") for r in simulator.requests)

    second = submit(second)
    assert (second.status, second.account, second.attempts) == (Status.QUEUED, gemini, 0)
    assert second.waiting_line == "crun is paused; trying another account"
    assert sum(r.path.endswith("CreateTask") for r in simulator.requests) == creates
