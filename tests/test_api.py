"""The HTTP API over real HTTP (the test server): tokens, access rules, validation, budgets,
idempotent creates, downloads, cancel, and the OpenAPI schema."""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone
from openapi_spec_validator import validate

from nanoweb.api.models import ApiToken, IdempotencyKey
from nanoweb.credits.models import Budget, LedgerEntry
from nanoweb.providers.simulator.render import image as render_image
from nanoweb.studio.models import Generation, ReferenceImage
from tests.conftest import start_job, store_result, succeed, wait_for

MODEL = "Nano Banana 2"


def token_for(user, scope: str = ApiToken.Scope.GENERATE, **extra) -> str:
    return ApiToken.issue(user=user, name="script", scope=scope, **extra)[1]


class Api:
    def __init__(self, base: str, token: str | None) -> None:
        self.base, self.session = f"{base}/api/v1", requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.base + path, timeout=30, **kwargs)


@pytest.fixture
def api_as(live_server):
    def make(user, scope: str = ApiToken.Scope.GENERATE) -> Api:
        return Api(live_server.url, token_for(user, scope) if user else None)

    return make


@pytest.fixture
def finished(owner, crun_account):
    """A result of the owner's, with its original stored."""
    [job] = start_job(owner, crun_account, "google/nano-banana-2", "a lighthouse at dusk")
    store_result(job, render_image("a lighthouse at dusk", 64, 48))
    succeed(job, progress=100)
    return job


def test_a_token_is_shown_once_and_stored_only_as_its_hash(owner):
    token, secret = ApiToken.issue(user=owner, name="ci", scope=ApiToken.Scope.READ)
    stored = ApiToken.objects.get(pk=token.pk)
    assert secret.startswith("nw_") and len(secret) > 40
    assert stored.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {getattr(stored, field.attname) for field in ApiToken._meta.fields}
    assert stored.prefix == secret[:10]


def test_a_request_without_a_valid_token_is_refused_with_its_reason(live_server, owner, crun_account):
    expired = token_for(owner, expires_at=timezone.now() - timedelta(seconds=1))
    revoked_token, revoked = ApiToken.issue(user=owner, name="old", scope="generate")
    revoked_token.revoke()
    cases = {None: "token_missing", "nw_guess": "token_invalid", expired: "token_expired", revoked: "token_revoked"}
    for token, code in cases.items():
        response = Api(live_server.url, token).post("/jobs", json={"prompt": "p", "model": MODEL})
        assert (response.status_code, response.json()["code"]) == (401, code)
    assert Generation.objects.count() == 0 and LedgerEntry.objects.count() == 0


def test_a_read_token_reads_but_may_not_create_or_cancel(api_as, owner, finished, crun_account):
    reader = api_as(owner, ApiToken.Scope.READ)
    assert reader.get(f"/jobs/{finished.pk}").json()["status"] == "succeeded"
    response = reader.post("/jobs", json={"prompt": "p", "model": MODEL})
    assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")
    [running] = start_job(owner, crun_account, "google/nano-banana-2")
    assert reader.post(f"/jobs/{running.pk}/cancel").status_code == 403
    running.refresh_from_db()
    assert running.status == "queued" and Generation.objects.count() == 2


def test_a_token_notes_when_and_from_where_it_was_last_used(api_as, owner, finished):
    api_as(owner).get(f"/jobs/{finished.pk}")
    token = ApiToken.objects.get(user=owner)
    assert token.last_used_from == "127.0.0.1"
    assert timezone.now() - token.last_used_at < timedelta(seconds=30)


def test_a_created_job_runs_on_the_simulator_and_its_original_downloads(api_as, owner, crun_account, worker):
    api = api_as(owner)
    response = api.post("/jobs", json={"prompt": "a red fox in snow", "model": MODEL, "aspect_ratio": "16:9"})
    assert response.status_code == 201, response.text
    [job] = response.json()["jobs"]
    assert (job["status"], job["prompt"], job["model"], job["aspect_ratio"], job["owner"]) == (
        "queued", "a red fox in snow", MODEL, "16:9", "olivia",
    )  # fmt: skip

    def done():
        read = api.get(f"/jobs/{job['id']}").json()
        return read if read["status"] == "succeeded" else None

    read = wait_for(done, timeout=30)
    [image] = read["images"]
    original = api.get(f"/jobs/{job['id']}/original")
    assert original.status_code == 200 and original.headers["Content-Type"] == image["mime_type"]
    assert hashlib.sha256(original.content).hexdigest() == image["sha256"]
    assert LedgerEntry.objects.filter(generation_id=job["id"], kind="settle").exists()


def test_references_come_as_base64_as_files_or_as_earlier_results(
    api_as, owner, finished, crun_account, live_server, settings
):
    settings.PUBLIC_BASE_URL = live_server.url  # crun fetches references from signed links
    api = api_as(owner)
    picture = render_image("ref", 64, 48)
    inline = api.post("/jobs", json={
        "prompt": "edit", "model": MODEL, "reference_images": [base64.b64encode(picture).decode()],
        "reference_results": [finished.images.get().pk],
    })  # fmt: skip
    assert inline.status_code == 201, inline.text
    uploaded = api.post(
        "/jobs/upload", data={"prompt": "edit again", "model": MODEL}, files=[("reference_files", ("a.png", picture))]
    )
    assert uploaded.status_code == 201, uploaded.text
    first = Generation.objects.get(pk=inline.json()["jobs"][0]["id"])
    second = Generation.objects.get(pk=uploaded.json()["jobs"][0]["id"])
    kinds = sorted(link.reference.result_id is not None for link in first.reference_links.select_related("reference"))
    assert kinds == [False, True]  # an upload and an earlier result
    assert second.reference_links.get().reference.sha256 == hashlib.sha256(picture).hexdigest()


def test_bad_input_is_refused_with_field_errors_and_nothing_is_stored(api_as, owner, crun_account):
    api = api_as(owner)
    cases = [
        ({"model": MODEL}, "prompt"),
        ({"prompt": "p", "model": "Nano Potato"}, "model"),
        ({"prompt": "p", "model": MODEL, "aspect_ratio": "7:3"}, "aspect_ratio"),
        ({"prompt": "p", "model": MODEL, "count": 9}, "count"),
        ({"prompt": "p", "model": MODEL, "reference_images": ["not base64!"]}, "reference_images"),
        ({"prompt": "p", "model": MODEL, "reference_images": [base64.b64encode(b"GIF89a junk").decode()]},
         "reference_images"),
    ]  # fmt: skip
    for body, field in cases:
        response = api.post("/jobs", json=body)
        assert (response.status_code, response.json()["code"]) == (422, "invalid"), body
        assert field in response.json()["fields"], response.json()
    malformed = api.post("/jobs", data="{not json", headers={"Content-Type": "application/json"})
    assert (malformed.status_code, malformed.json()["code"]) == (422, "malformed")
    assert Generation.objects.count() == ReferenceImage.objects.count() == LedgerEntry.objects.count() == 0


def test_an_unknown_model_says_which_models_it_cannot_use(api_as, owner, crun_account):
    response = api_as(owner).post("/jobs", json={"prompt": "p", "model": "Nano Potato"})
    assert response.json()["fields"]["model"] == ["Nano Potato is not available: choose another model."]


def test_over_budget_is_402_and_charges_nothing(api_as, owner, crun_account):
    Budget.objects.create(user=owner, amount=Decimal("0.01"), period="month")
    response = api_as(owner).post("/jobs", json={"prompt": "p", "model": MODEL}, headers={"Idempotency-Key": "k1"})
    assert (response.status_code, response.json()["code"]) == (402, "over_budget")
    assert "left" in response.json()["message"]
    assert Generation.objects.count() == LedgerEntry.objects.count() == IdempotencyKey.objects.count() == 0


def test_a_retried_create_with_the_same_key_returns_the_first_job_and_charges_once(api_as, owner, crun_account):
    api = api_as(owner)
    body = {"prompt": "once only", "model": MODEL}
    first = api.post("/jobs", json=body, headers={"Idempotency-Key": "order-1"})
    again = api.post("/jobs", json=body, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["jobs"][0]["id"] == first.json()["jobs"][0]["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = api.post("/jobs", json={**body, "prompt": "something else"}, headers={"Idempotency-Key": "order-1"})
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert Generation.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="reserve").count() == 1


def test_concurrent_retries_with_one_key_make_one_job(api_as, owner, crun_account):
    api = api_as(owner)
    answers: list[requests.Response] = []
    threads = [
        threading.Thread(target=lambda: answers.append(
            api.post("/jobs", json={"prompt": "race", "model": MODEL}, headers={"Idempotency-Key": "race-1"})
        ))
        for _ in range(6)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [answer.status_code for answer in answers] == [201] * 6
    assert len({answer.json()["jobs"][0]["id"] for answer in answers}) == 1
    assert Generation.objects.count() == 1 and LedgerEntry.objects.filter(kind="reserve").count() == 1


@pytest.mark.parametrize(
    "private, who, sees",
    [
        (False, "owner", True), (False, "teammate", True), (False, "staff", True),
        (True, "owner", True), (True, "teammate", False), (True, "staff", True),
    ],
)  # fmt: skip
def test_a_token_sees_what_its_owner_sees_in_the_pages(
    api_as, owner, teammate, staff, crun_account, finished, private, who, sees
):  # fmt: skip
    Generation.objects.filter(pk=finished.pk).update(private=private)
    api = api_as({"owner": owner, "teammate": teammate, "staff": staff}[who])
    read, original = api.get(f"/jobs/{finished.pk}"), api.get(f"/jobs/{finished.pk}/original")
    listed = [job["id"] for job in api.get("/jobs").json()["jobs"]]
    if sees:
        assert (read.status_code, original.status_code, finished.pk in listed) == (200, 200, True)
    else:
        assert (read.status_code, read.json()["code"], original.status_code) == (404, "not_found", 404)
        assert finished.pk not in listed


def test_only_the_owner_or_staff_cancel_a_job_and_it_is_refunded(api_as, owner, teammate, staff, crun_account):
    [job] = start_job(owner, crun_account, "google/nano-banana-2")
    assert api_as(teammate).post(f"/jobs/{job.pk}/cancel").status_code == 404
    response = api_as(owner).post(f"/jobs/{job.pk}/cancel")
    assert (response.status_code, response.json()["status"]) == (200, "canceled")
    again = api_as(staff).post(f"/jobs/{job.pk}/cancel")
    assert (again.status_code, again.json()["code"]) == (409, "already_ended")
    assert LedgerEntry.objects.filter(generation=job, kind="release").count() == 1


def test_the_list_takes_the_gallerys_filters_and_search(api_as, owner, teammate, crun_account):
    # The gallery's default is the team's finished images (failed and running ones: `status=`).
    [fox] = start_job(owner, crun_account, "google/nano-banana-2", "a red fox asleep")
    [whale] = start_job(teammate, crun_account, "google/nano-banana-2", "a blue whale")
    succeed(fox), succeed(whale)
    api = api_as(owner)
    assert [job["prompt"] for job in api.get("/jobs", params={"q": "foxes"}).json()["jobs"]] == ["a red fox asleep"]
    assert [job["owner"] for job in api.get("/jobs", params={"view": "mine"}).json()["jobs"]] == ["olivia"]
    assert [job["owner"] for job in api.get("/jobs", params={"person": "tom"}).json()["jobs"]] == ["tom"]
    assert len(api.get("/jobs").json()["jobs"]) == 2
    bad = api.get("/jobs", params={"since": "2026-02-02", "until": "2026-01-01"})
    assert (bad.status_code, bad.json()["fields"]["until"]) == (422, ["The end must not be before the start."])


def test_tokens_are_rate_limited_per_token_with_retry_after(api_as, owner, teammate, finished, settings):
    settings.API_RATE_LIMIT = 3
    api = api_as(owner)
    answers = [api.get(f"/jobs/{finished.pk}") for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["code"] == "rate_limited"
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 61
    assert api_as(teammate).get(f"/jobs/{finished.pk}").status_code == 200  # another token has its own count


def test_the_openapi_schema_validates_and_the_docs_page_serves_local_assets(client, owner):
    client.force_login(owner)
    schema = client.get("/api/v1/openapi.json").json()
    validate(schema)
    assert {"/api/v1/jobs", "/api/v1/jobs/upload", "/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}/original",
            "/api/v1/jobs/{job_id}/cancel", "/api/v1/batches", "/api/v1/batches/{batch_id}",
            "/api/v1/batches/{batch_id}/cancel"} <= set(schema["paths"])  # fmt: skip
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
    docs = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()


def test_members_create_see_and_revoke_their_tokens_and_staff_revoke_anyones(client, owner, staff):
    client.force_login(owner)
    page = client.post("/account/tokens", {"name": "laptop", "scope": "generate"}).content.decode()
    token = ApiToken.objects.get(user=owner)
    secret = page.split('id="token-secret">')[1].split("<")[0]
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in client.get("/account/tokens").content.decode()  # shown once
    bad = client.post("/account/tokens", {"name": "", "scope": "admin"})
    assert bad.status_code == 400 and ApiToken.objects.count() == 1
    client.force_login(staff)
    assert "laptop" in client.get("/account/tokens").content.decode()
    client.post(f"/account/tokens/{token.pk}/revoke")
    token.refresh_from_db()
    assert token.state == "revoked"


def test_a_member_cannot_revoke_anothers_token(client, owner, teammate):
    token, _ = ApiToken.issue(user=owner, name="olivias-laptop", scope="read")
    client.force_login(teammate)
    assert client.post(f"/account/tokens/{token.pk}/revoke").status_code == 404
    assert "olivias-laptop" not in client.get("/account/tokens").content.decode()
    token.refresh_from_db()
    assert token.state == "active"


def test_anonymous_visitors_reach_neither_token_pages_nor_the_schema(client):
    for url in ("/account/tokens", "/account/webhooks", "/api/v1/docs", "/api/v1/openapi.json"):
        assert client.get(url)["Location"].startswith("/login"), url


def test_a_json_body_over_the_limit_is_413_and_points_to_multipart(api_as, owner, crun_account):
    too_big = base64.b64encode(b"\0" * 3 * 1024 * 1024).decode()
    response = api_as(owner).post("/jobs", json={"prompt": "p", "model": MODEL, "reference_images": [too_big]})
    assert (response.status_code, response.json()["code"]) == (413, "too_large")
    assert "multipart" in response.json()["message"] and Generation.objects.count() == 0
