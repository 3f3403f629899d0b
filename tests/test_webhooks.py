"""Signed webhooks, delivered over real HTTP to a receiver on loopback: the signature, retries
with backoff, the outbound guard, who hears what, and the page that lists deliveries."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.utils import timezone

from nanoweb.api import webhooks
from nanoweb.api.models import EVENTS, ApiToken, WebhookDelivery, WebhookEndpoint
from nanoweb.batches import events as batch_events
from nanoweb.batches import rows as batch_rows
from nanoweb.batches import service
from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation
from tests.conftest import start_job, wait_for
from tests.test_providers import run_to_end


class Receiver:
    """A real HTTP server that records what it is sent and answers the statuses it is given, in turn."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(statuses: list[int] | None = None) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for each in made:
        each.stop()


def endpoint_for(user, url: str, *, team: bool = False) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(owner=user, url=url, events=list(EVENTS), team=team)


def test_a_finished_api_job_sends_one_signed_event_that_verifies(
    live_server, client, owner, crun_account, worker, receiver
):
    hook = receiver()
    client.force_login(owner)
    page = client.post("/account/webhooks", {"url": hook.url, "events": ["job.succeeded", "job.failed"]})
    secret = page.content.decode().split('id="webhook-secret">')[1].split("<")[0]
    token = ApiToken.issue(user=owner, name="bench", scope="generate")[1]
    created = requests.post(
        f"{live_server.url}/api/v1/jobs", json={"prompt": "a kite", "model": "Nano Banana 2"},
        headers={"Authorization": f"Bearer {token}"}, timeout=30,
    )  # fmt: skip
    job_id = created.json()["jobs"][0]["id"]
    wait_for(lambda: hook.received, timeout=40)
    [(headers, body)] = hook.received
    assert webhooks.verify(secret, body, headers["Nanoweb-Signature"])
    assert not webhooks.verify(secret, body.replace(b"a kite", b"a kitE"), headers["Nanoweb-Signature"])
    assert not webhooks.verify("whsec_wrong", body, headers["Nanoweb-Signature"])
    event = json.loads(body)
    assert (event["type"], event["data"]["id"], event["data"]["status"]) == ("job.succeeded", job_id, "succeeded")
    assert event["data"]["images"][0]["sha256"]
    listed = client.get("/account/webhooks").content.decode()
    assert "delivered" in listed and "HTTP 200" in listed and f"#{job_id}" in listed


def test_a_refused_delivery_is_retried_with_backoff_until_accepted(
    transactional_db, owner, crun_account, receiver, settings
):  # fmt: skip
    """Committed rows: retries are made by threads of their own, as the scheduled task makes them."""
    settings.WEBHOOK_RETRY_SECONDS = 0.5
    hook = receiver([500])
    endpoint = endpoint_for(owner, hook.url)
    [job] = start_job(owner, crun_account, "google/nano-banana-2")
    pipeline.cancel(job)  # committed: the event is raised (its first attempt queued as a task, run here instead)
    delivery = WebhookDelivery.objects.get()
    webhooks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("retrying", 1, 500)
    assert timedelta(seconds=0.3) < delivery.next_attempt_at - delivery.last_attempt_at < timedelta(seconds=1)
    assert webhooks.deliver_due() == 0  # not yet due
    wait_for(lambda: webhooks.deliver_due(), timeout=5)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status, delivery.next_attempt_at) == (
        "delivered",
        2,
        200,
        None,
    )
    [(first_headers, first), (second_headers, second)] = hook.received
    assert first == second  # the same event, signed afresh each time
    assert all(webhooks.verify(endpoint.secret, first, h["Nanoweb-Signature"]) for h in (first_headers, second_headers))
    assert json.loads(first)["type"] == "job.canceled"


def test_backoff_doubles_to_two_hours_and_gives_up_after_a_day(owner, crun_account, receiver, settings):
    settings.WEBHOOK_RETRY_SECONDS = 30
    assert [webhooks.backoff(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert webhooks.backoff(12) == 7200
    hook = receiver([503])
    endpoint_for(owner, hook.url)
    [job] = start_job(owner, crun_account, "google/nano-banana-2")
    pipeline.cancel(job)
    webhooks.job_ended(job.pk, "canceled")
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(hours=23, minutes=59), attempts=11)
    webhooks.deliver(WebhookDelivery.objects.get().pk)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status, delivery.next_attempt_at) == (
        "gave up",
        12,
        503,
        None,
    )


def test_a_private_address_is_refused_at_registration(client, owner, settings):
    settings.ALLOW_PRIVATE_OUTBOUND = False
    client.force_login(owner)
    for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://[::1]/hook"):
        response = client.post("/account/webhooks", {"url": url, "events": ["job.succeeded"]})
        assert response.status_code == 400
        assert "private or local address" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_a_private_address_is_refused_at_delivery_and_nothing_is_sent(owner, crun_account, receiver, settings):
    hook = receiver()
    endpoint_for(owner, hook.url)  # registered while private addresses were allowed
    settings.ALLOW_PRIVATE_OUTBOUND = False
    [job] = start_job(owner, crun_account, "google/nano-banana-2")
    pipeline.cancel(job)
    webhooks.job_ended(job.pk, "canceled")
    webhooks.deliver(WebhookDelivery.objects.get().pk)
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "gave up" and delivery.last_answer.startswith("Refused")
    assert hook.received == []


def test_members_hear_of_their_own_jobs_and_staff_team_endpoints_of_everyones(
    owner, teammate, staff, crun_account
):  # fmt: skip
    mine = endpoint_for(owner, "https://example.com/olivia")
    theirs = endpoint_for(teammate, "https://example.com/tom", team=True)  # team is for staff only
    team = endpoint_for(staff, "https://example.com/team", team=True)
    only_failures = WebhookEndpoint.objects.create(owner=owner, url="https://example.com/f", events=["job.failed"])
    [job] = start_job(owner, crun_account, "google/nano-banana-2", private=True)
    pipeline.cancel(job)
    webhooks.job_ended(job.pk, "canceled")
    heard = set(WebhookDelivery.objects.values_list("endpoint", flat=True))
    assert heard == {mine.pk, team.pk}
    assert theirs.pk not in heard and only_failures.pk not in heard


def test_a_job_ending_raises_its_event_once_the_end_has_committed(
    owner, crun_account, django_capture_on_commit_callbacks
):  # fmt: skip
    endpoint_for(owner, "https://example.com/olivia")
    [job] = start_job(owner, crun_account, "google/nano-banana-2")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        pipeline.cancel(job)
    assert WebhookDelivery.objects.count() == 0  # not before the commit
    for callback in callbacks:
        callback()
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == ["job.canceled"]


def test_a_member_removes_their_endpoint_but_not_anothers(client, owner, teammate):
    endpoint = endpoint_for(owner, "https://example.com/olivia")
    client.force_login(teammate)
    assert client.post(f"/account/webhooks/{endpoint.pk}/delete").status_code == 404
    assert "example.com/olivia" not in client.get("/account/webhooks").content.decode()
    client.force_login(owner)
    client.post(f"/account/webhooks/{endpoint.pk}/delete")
    assert not WebhookEndpoint.objects.exists()


def test_staff_register_team_endpoints_and_members_only_their_own(client, owner, staff):
    client.force_login(owner)
    assert "Every job and batch of the team" not in client.get("/account/webhooks").content.decode()
    client.post("/account/webhooks", {"url": "https://example.com/mine", "events": ["job.failed"], "team": "on"})
    client.force_login(staff)
    client.post("/account/webhooks", {"url": "https://example.com/team", "events": ["job.failed"], "team": "on"})
    assert dict(WebhookEndpoint.objects.values_list("url", "team")) == {
        "https://example.com/mine": False,
        "https://example.com/team": True,
    }
    page = client.get("/account/webhooks").content.decode()
    assert "example.com/team" in page and "example.com/mine" not in page  # staff see team endpoints, not members'


def test_a_webhook_needs_a_url_and_an_event(client, owner):
    client.force_login(owner)
    page = client.post("/account/webhooks", {"url": "not a url"}).content.decode()
    assert "Give a full http(s) URL." in page and "Choose at least one event." in page
    assert not WebhookEndpoint.objects.exists()


def test_a_batch_raises_one_signed_batch_finished_event_when_its_last_job_ends(
    transactional_db, owner, teammate, staff, make_account, receiver
):  # fmt: skip
    """Committed rows: each job's end reaches the listeners after its commit, as in the workers."""
    make_account("gemini")
    hook, team_hook = receiver(), receiver()
    mine = WebhookEndpoint.objects.create(owner=owner, url=hook.url, events=["batch.finished"])
    team = WebhookEndpoint.objects.create(owner=staff, url=team_hook.url, events=["batch.finished"], team=True)
    WebhookEndpoint.objects.create(owner=teammate, url="https://example.com/tom", events=list(EVENTS))
    WebhookEndpoint.objects.create(owner=owner, url="https://example.com/jobs", events=["job.succeeded"])
    batch = service.create_batch(
        owner=owner,
        rows=batch_rows.from_lines("a kite\na second kite"),
        defaults=batch_rows.Defaults("Nano Banana 2.1"),
    )
    first, last = Generation.objects.filter(batch_item__batch=batch).order_by("pk")
    run_to_end(first)
    assert not WebhookDelivery.objects.filter(event="batch.finished").exists()
    run_to_end(last)
    batch_events.job_ended(last.pk, "succeeded")  # heard again (a redelivered task): no second event
    finished = WebhookDelivery.objects.filter(event="batch.finished")
    assert sorted(finished.values_list("endpoint", flat=True)) == [mine.pk, team.pk]
    assert set(finished.values_list("batch", flat=True)) == {batch.pk}
    assert WebhookDelivery.objects.filter(event="job.succeeded").count() == 2  # the jobs' own events, as before
    for delivery in finished:
        webhooks.deliver(delivery.pk)
    [(headers, body)] = hook.received
    assert len(team_hook.received) == 1
    assert headers["Nanoweb-Event"] == "batch.finished"
    assert webhooks.verify(mine.secret, body, headers["Nanoweb-Signature"])
    event = json.loads(body)
    assert (event["type"], event["data"]["id"], event["data"]["finished"]) == ("batch.finished", batch.pk, True)
    assert event["data"]["jobs"] == [first.pk, last.pk]
    assert (event["data"]["progress"]["done"], event["data"]["progress"]["charged"]) == (2, "0.134")


def test_a_canceled_batch_finishes_too_and_its_delivery_links_to_it(transactional_db, client, owner, make_account):
    make_account("gemini")
    WebhookEndpoint.objects.create(owner=owner, url="https://example.com/olivia", events=list(EVENTS))
    batch = service.create_batch(
        owner=owner, rows=batch_rows.from_lines("a\nb\nc"), defaults=batch_rows.Defaults("Nano Banana 2.1")
    )
    assert service.cancel(batch) == 3
    assert list(WebhookDelivery.objects.filter(batch=batch).values_list("event", flat=True)) == ["batch.finished"]
    assert WebhookDelivery.objects.filter(event="job.canceled").count() == 3
    client.force_login(owner)
    assert f'href="/batches/{batch.pk}">batch {batch.pk}</a>' in client.get("/account/webhooks").content.decode()


def test_a_batch_made_through_the_api_tells_its_end_once_from_the_workers(
    live_server, owner, make_account, worker, receiver
):  # fmt: skip
    make_account("gemini")
    hook = receiver()
    endpoint = WebhookEndpoint.objects.create(owner=owner, url=hook.url, events=["batch.finished"])
    token = ApiToken.issue(user=owner, name="script", scope="generate")[1]
    created = requests.post(
        f"{live_server.url}/api/v1/batches",
        json={"rows": [{"prompt": "a kite"}, {"prompt": "a boat", "count": 2}], "defaults": {"model": "Nano Banana 2.1"}},
        headers={"Authorization": f"Bearer {token}"}, timeout=30,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    wait_for(lambda: hook.received, timeout=60)
    [(headers, body)] = hook.received
    event = json.loads(body)
    assert webhooks.verify(endpoint.secret, body, headers["Nanoweb-Signature"])
    assert (event["type"], event["data"]["id"], event["data"]["progress"]["done"]) == (
        "batch.finished", created.json()["id"], 3,
    )  # fmt: skip
