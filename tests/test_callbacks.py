"""Provider callbacks only wake a job; the status is then read with our key."""

from __future__ import annotations

import hashlib
import hmac
import json

from django.urls import reverse
from django.utils import timezone

from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation
from tests.conftest import chosen, wait_until_terminal


def submitted(owner, account, model, prompt="a harbour"):
    generation = Generation.objects.create(owner=owner, prompt=prompt, account=account, model=model)
    pipeline.submit(Generation.objects.select_related("account").get(pk=generation.pk))
    generation.refresh_from_db()
    return generation


def far_future(generation):
    Generation.objects.filter(pk=generation.pk).update(due_at=timezone.now() + timezone.timedelta(hours=1))


def test_a_callback_makes_the_job_due_at_once(client, owner, crun_account):
    generation = submitted(owner, crun_account, "google/nano-banana")
    far_future(generation)

    response = client.post(reverse("provider_callback", args=[generation.callback_token]), "{}", "application/json")

    assert response.status_code == 200
    generation.refresh_from_db()
    assert generation.due_at <= timezone.now()
    assert generation.status == Generation.Status.SUBMITTED, "the payload itself changes nothing"


def test_a_callback_right_after_a_read_is_not_held_back_by_the_polling_interval(client, owner, crun_account):
    """Our last read came a moment before the provider finished; its callback is read at once,
    not after the vendor's interval between our own polls."""
    generation = submitted(owner, crun_account, "google/nano-banana")
    soon = timezone.now() + timezone.timedelta(seconds=1)
    Generation.objects.filter(pk=generation.pk).update(last_read_at=timezone.now(), due_at=soon)

    client.post(reverse("provider_callback", args=[generation.callback_token]), "{}", "application/json")

    assert Generation.objects.get(pk=generation.pk).due_at <= timezone.now()


def test_a_callback_during_a_status_read_is_not_lost_when_the_read_reschedules(client, owner, crun_account):
    """The read went out just before the provider finished and says "running"; the callback came
    while it was out. The job stays due now, not at its next safety-net read."""
    generation = submitted(owner, crun_account, "google/nano-banana")
    Generation.objects.filter(pk=generation.pk).update(claim="sweep", due_at=timezone.now())
    read_out = Generation.objects.select_related("account").get(pk=generation.pk)  # as the sweep claimed it

    client.post(reverse("provider_callback", args=[generation.callback_token]), "{}", "application/json")
    woken = Generation.objects.get(pk=generation.pk).due_at
    pipeline.reschedule(read_out, 600)
    assert Generation.objects.get(pk=generation.pk).due_at == woken
    assert Generation.objects.get(pk=generation.pk).claim == "", "the claim is released all the same"

    quiet = Generation.objects.select_related("account").get(pk=generation.pk)
    pipeline.reschedule(quiet, 600)
    assert Generation.objects.get(pk=generation.pk).due_at > timezone.now() + timezone.timedelta(seconds=590)


def test_a_forged_callback_claiming_success_changes_nothing(client, owner, crun_account):
    generation = submitted(owner, crun_account, "google/nano-banana", prompt="slow [sim:latency=30]")
    forged = {"task_id": generation.provider_task_id, "status": "success",
              "result": {"media_urls": ["https://evil.example/x.png"]}}  # fmt: skip
    client.post(reverse("provider_callback", args=[generation.callback_token]), forged, "application/json")

    pipeline.follow(Generation.objects.select_related("account").get(pk=generation.pk))
    generation.refresh_from_db()
    assert generation.status in (Generation.Status.SUBMITTED, Generation.Status.RUNNING)
    assert not generation.images.exists()


def test_apiframe_callbacks_with_a_bad_signature_are_rejected(client, owner, make_account):
    account = make_account("apiframe")
    generation = submitted(owner, account, "nano-banana-2")
    far_future(generation)
    url = reverse("provider_callback", args=[generation.callback_token])
    body = json.dumps({"event": "completed", "jobId": generation.provider_task_id}).encode()

    bad = client.post(url, body, "application/json", HTTP_X_WEBHOOK_SIGNATURE="0" * 64)
    assert bad.status_code == 401
    generation.refresh_from_db()
    assert generation.due_at > timezone.now(), "a rejected callback does not wake the job"

    good_signature = hmac.new(hashlib.sha256(b"sim-key").digest(), body, hashlib.sha256).hexdigest()
    assert client.post(url, body, "application/json", HTTP_X_WEBHOOK_SIGNATURE=good_signature).status_code == 200


def test_a_replayed_callback_for_a_finished_job_is_ignored(client, owner, crun_account):
    generation = submitted(owner, crun_account, "google/nano-banana")
    generation.advance(Generation.FOLLOWED, Generation.Status.FAILED, error_message="gone")

    response = client.post(reverse("provider_callback", args=[generation.callback_token]), "{}", "application/json")

    assert response.status_code == 200
    generation.refresh_from_db()
    assert generation.status == Generation.Status.FAILED and generation.due_at is None


def test_a_callback_for_an_unknown_token_is_404(client, db):
    assert client.post(reverse("provider_callback", args=["x" * 43]), "{}", "application/json").status_code == 404


def test_providers_call_back_over_http_and_the_job_finishes_long_before_the_next_poll(
    live_server, start_worker, owner_client, make_account, simulator, settings
):
    """crun, apiframe (signed) and defapi POST to PUBLIC_BASE_URL; the woken job is read once.

    With callbacks in use the first fallback poll is 5 s after submitting; a job that ends in
    under 4 s with a single status read can only have been woken by its callback.
    """
    settings.PUBLIC_BASE_URL = live_server.url
    start_worker(PUBLIC_BASE_URL=live_server.url)
    simulator.latency = 1.0
    accounts = {kind: make_account(kind) for kind in ("crun", "apiframe", "defapi")}
    models = {"crun": "google/nano-banana", "apiframe": "nano-banana", "defapi": "google/gempix2"}
    for kind, account in accounts.items():
        owner_client.post(reverse("generate"), {"prompt": f"{kind} harbour", **chosen(account, models[kind])})

    for generation in Generation.objects.select_related("account"):
        wait_until_terminal(generation, timeout=15)
        assert generation.status == Generation.Status.SUCCEEDED, generation.error_detail
        job = simulator.jobs[generation.provider_task_id]
        assert job.callback_url == live_server.url + reverse("provider_callback", args=[generation.callback_token])
        reads = [
            r
            for r in simulator.requests
            if r.method == "GET" and generation.provider_task_id in (r.path + str(r.query))
        ]
        assert len(reads) == 1, generation.account.kind
        assert (generation.finished_at - generation.submitted_at).total_seconds() < 4, generation.account.kind


def test_each_vendor_callback_names_its_task_where_the_vendor_puts_it(make_account):
    bodies = {
        "crun": {"task_id": "c-1", "status": "success", "param": {}},
        "defapi": {"task_id": "d-1", "status": "success", "result": []},
        "apiframe": {"event": "completed", "jobId": "a-1", "status": "COMPLETED"},
    }
    for kind, body in bodies.items():
        adapter = make_account(kind).adapter()
        assert adapter.callback_task_id(json.dumps(body).encode()) == body.get("task_id", body.get("jobId"))
        assert adapter.callback_task_id(b"not json") == "" and adapter.callback_task_id(b'{"task_id": {}}') == ""
    crun = make_account("crun", name="crun 2").adapter()
    assert crun.callback_task_id(json.dumps({"code": 200, "data": {"task_id": "c-2"}}).encode()) == "c-2"
    assert make_account("nanophoto").adapter().callback_task_id(b'{"task_id": "n-1"}') == "", "no callbacks"
