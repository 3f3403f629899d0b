"""What a transport failure tells whom: members read our sentence (and a provider's own words when
it said any), staff the transport detail; credentials and query strings reach no one."""

from __future__ import annotations

import socket

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from nanoweb.lib import http
from nanoweb.providers.models import ProviderAccount
from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation
from tests.conftest import start_job

CREDENTIALS = ("user:", "secret", "s3cr3t", "token=")
SECRETS = (*CREDENTIALS, "internal/crun-proxy")  # members see nothing of the URL


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def failed_job(db, simulator, owner, settings):
    """A job whose account (saved before base URLs were checked) points at a gateway that is down,
    with credentials in its base URL; the one create the job may make fails to connect."""
    settings.CREATE_RETRY_ATTEMPTS = 1
    account = ProviderAccount.objects.create(
        kind="crun", name="gateway", api_key="sim-key",
        base_url=f"http://user:secret@127.0.0.1:{closed_port()}/internal/crun-proxy?token=s3cr3t",
    )  # fmt: skip
    [job] = start_job(owner, account, account.catalogue.first().model_id)
    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))
    job.refresh_from_db()
    assert job.status == Generation.Status.FAILED
    return job


def shown(text: str, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    return [secret for secret in secrets if secret in text]


def test_transport_errors_never_carry_credentials_or_query_strings():
    with pytest.raises(http.ConnectFailed) as refused:
        http.request("GET", f"http://user:secret@127.0.0.1:{closed_port()}/internal/crun-proxy/x?token=s3cr3t")
    assert shown(str(refused.value), CREDENTIALS) == []
    assert "127.0.0.1" in str(refused.value)


def test_a_teammate_sees_our_sentence_for_a_transport_failure_and_nothing_of_the_url(client, teammate, failed_job):
    client.force_login(teammate)
    page = client.get(reverse("generation_detail", args=[failed_job.pk])).content.decode()
    assert "The provider is unavailable right now" in page
    assert "cannot connect" not in page
    assert shown(page) == []
    client.force_login(failed_job.owner)  # the gallery shows failures to their owner only
    gallery = client.get(reverse("gallery"), {"status": "failed"}).content.decode()
    assert "The provider is unavailable right now" in gallery and shown(gallery) == []


def test_the_owner_sees_no_transport_detail_either(owner_client, failed_job):
    page = owner_client.get(reverse("generation_detail", args=[failed_job.pk])).content.decode()
    assert "cannot connect" not in page and shown(page) == []


def test_staff_see_the_transport_detail_without_credentials_or_query_strings(client, staff, failed_job):
    client.force_login(staff)
    page = client.get(reverse("generation_detail", args=[failed_job.pk])).content.decode()
    assert "cannot connect to 127.0.0.1" in page
    assert shown(page, CREDENTIALS) == []
    ledger = b"".join(client.get(reverse("ledger_csv")).streaming_content).decode()
    assert "The provider is unavailable right now" in ledger and shown(ledger) == []


def test_the_provider_s_own_words_still_reach_members(client, teammate, make_account, settings):
    settings.CREATE_RETRY_ATTEMPTS = 1
    account = make_account("crun", faults="+error=400")
    [job] = start_job(teammate, account, account.catalogue.first().model_id)
    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))
    job.refresh_from_db()
    assert job.status == Generation.Status.FAILED and " said: " in job.error_message
    words = job.error_message.split(" said: ", 1)[1]
    client.force_login(teammate)
    page = client.get(reverse("generation_detail", args=[job.pk])).content.decode()
    assert words[:40] in page


@pytest.mark.parametrize(
    "url", ["http://user:secret@gateway:8499/x", "https://token@api.example.com/v1", "http://:pw@example.com/"]
)
def test_a_base_url_with_user_info_is_refused(db, url):
    account = ProviderAccount(kind="crun", name="x", base_url=url, api_key="k")
    with pytest.raises(ValidationError) as refused:
        account.full_clean()
    assert "user name or password" in str(refused.value)


def test_the_admin_refuses_a_base_url_with_user_info(admin_client):
    response = admin_client.post(
        reverse("admin:providers_provideraccount_add"),
        {"name": "gw", "kind": "crun", "base_url": "http://user:secret@gateway:8499/x", "api_key": "k",
         "enabled": "on", "priority": "100", "rate_limit": "10",
         "catalogue-TOTAL_FORMS": "0", "catalogue-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "user name or password" in response.content.decode()
    assert not ProviderAccount.objects.filter(name="gw").exists()


def test_error_texts_stored_before_the_fix_lose_their_credentials(db, owner, make_account):
    from importlib import import_module

    from django.apps import apps

    from nanoweb.providers.models import Attempt

    leaked = (
        "gateway said: cannot connect to user:secret@gateway:8499: url: /internal/crun-proxy?token=s3cr3t/x (Caused"
    )
    account = make_account("crun")
    job = Generation.objects.create(owner=owner, prompt="p", account=account, model="m", status="failed",
                                    error_message=leaked, error_detail=leaked)  # fmt: skip
    Attempt.objects.create(generation=job, account=account, model_id="m", message=leaked)
    import_module("nanoweb.studio.migrations.0018_scrub_credentials_from_errors").scrub_errors(apps, None)
    import_module("nanoweb.providers.migrations.0009_transport_detail_and_plain_base_urls").scrub_attempts(apps, None)

    job.refresh_from_db()
    for text in (job.error_message, job.error_detail, Attempt.objects.get().message):
        assert shown(text, CREDENTIALS) == [] and "cannot connect to gateway:8499" in text
