"""What pauses a team account: only a refusal about its key or credit beyond doubt, confirmed by a
cheap call (balance, model list) before pausing; a member never learns why an account is paused."""

from __future__ import annotations

import pytest
from django.urls import reverse

from nanoweb.providers.models import ProviderAccount
from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation
from tests.conftest import start_job

Status = Generation.Status


def submit(job: Generation) -> Generation:
    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))
    job.refresh_from_db()
    return job


@pytest.fixture(autouse=True)
def _one_create(settings):
    settings.CREATE_RETRY_ATTEMPTS = 1


@pytest.mark.parametrize(("kind", "model"), [("crun", "google/nano-banana-2"), ("gemini", "gemini-3.1-flash-image")])
def test_a_403_to_one_member_s_prompt_fails_that_job_alone(owner, teammate, make_account, kind, model):
    account = make_account(kind)
    [refused] = start_job(owner, account, model, "something the vendor refuses [sim:error=403]")
    refused = submit(refused)
    assert refused.status == Status.FAILED

    account.refresh_from_db()
    assert not account.paused, "the key answered the check: the 403 was about the prompt"
    [fine] = start_job(teammate, account, model, "a lighthouse")
    assert submit(fine).status in (Status.SUBMITTED, Status.FINISHING), "the team's account still serves"


@pytest.mark.parametrize(
    ("kind", "model", "fault"),
    [("crun", "google/nano-banana-2", "+error=401"), ("crun", "google/nano-banana-2", "+error=402"),
     ("gemini", "gemini-3.1-flash-image", "+error=403"), ("apiframe", "gemini-3.1-flash-image", "+error=402")],
)  # fmt: skip
def test_a_key_or_credit_refusal_the_check_confirms_pauses_the_account(owner, make_account, kind, model, fault):
    account = make_account(kind, faults=fault)
    if not account.catalogue.filter(model_id=model).exists():
        model = account.catalogue.first().model_id
    [job] = start_job(owner, account, model)
    assert submit(job).status == Status.FAILED
    account.refresh_from_db()
    assert account.paused


def test_a_bad_key_pauses_the_account(owner, simulator, make_account):
    account = make_account("crun")
    ProviderAccount.objects.filter(pk=account.pk).update(api_key="revoked-key")
    account.refresh_from_db()
    [job] = start_job(owner, account, "google/nano-banana-2")
    assert submit(job).status == Status.FAILED
    account.refresh_from_db()
    assert account.paused


def test_an_account_without_a_check_is_not_paused_on_one_refusal(owner, make_account):
    account = make_account("nanophoto", faults="+error=FORBIDDEN")
    [job] = start_job(owner, account, account.catalogue.first().model_id)
    assert (submit(job).status, job.error_kind) == (Status.FAILED, "auth")
    account.refresh_from_db()
    assert not account.paused


def test_a_tampered_routing_naming_a_paused_account_gets_the_generic_refusal(client, teammate, make_account):
    crun, _ = make_account("crun"), make_account("gemini")
    crun.pause("The provider rejected the account's API key (HTTP 401, code 401: key sk-live-1234 revoked)")
    disabled = make_account("apiframe")
    ProviderAccount.objects.filter(pk=disabled.pk).update(enabled=False)
    client.force_login(teammate)
    data = {"prompt": "p", "model": "Nano Banana 2", "resolution": "1K"}

    answers = [
        client.post(reverse("generate"), {**data, "routing": pk}, HTTP_HX_REQUEST="true").text
        for pk in (crun.pk, disabled.pk, 999999)
    ]
    generic = "That account is not available: choose Automatic or one of the listed accounts."
    assert all(generic in answer for answer in answers)
    assert not any("revoked" in answer or "401" in answer for answer in answers)
    assert not Generation.objects.exists()
