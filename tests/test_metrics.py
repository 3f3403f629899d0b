"""/metrics: staff and the scraper's token read it; nobody else; the figures are the studio's."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from prometheus_client.parser import text_string_to_metric_families

from nanoweb.api.metrics import CACHE_KEY
from nanoweb.studio.jobs import pipeline
from tests.conftest import start_job, succeed


@pytest.fixture(autouse=True)
def _fresh_figures():
    cache.delete(CACHE_KEY)


def test_anonymous_callers_and_members_are_refused(client, owner, settings):
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    client.force_login(owner)
    response = client.get("/metrics")
    assert response.status_code == 403 and b"nanoweb_jobs" not in response.content


def test_without_a_metrics_token_setting_no_bearer_gets_in(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_staff_and_the_scraper_read_jobs_times_reads_ledger_and_queues(client, staff, owner, crun_account, settings):
    settings.METRICS_TOKEN = "scrape-me"
    [done] = start_job(owner, crun_account, "google/nano-banana-2")
    succeed(done)
    [canceled] = start_job(owner, crun_account, "google/nano-banana-2")
    pipeline.cancel(canceled)
    start_job(owner, crun_account, "google/nano-banana-2")
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    figures = samples(response.content.decode())
    labels = (("model", "Nano Banana 2"), ("provider", "crun (sim)"))
    for state in ("succeeded", "canceled", "queued"):
        assert figures[("nanoweb_jobs", tuple(sorted((*labels, ("state", state)))))] == 1
    assert figures[("nanoweb_time_to_result_seconds_count", ())] == 1
    assert figures[("nanoweb_time_to_result_seconds_bucket", (("le", "5.0"),))] == 1
    assert figures[("nanoweb_jobs_ended_total", (("provider", "crun (sim)"),))] == 2
    assert ("nanoweb_provider_reads_total", (("provider", "crun (sim)"),)) in figures
    assert figures[("nanoweb_ledger_total", (("kind", "settle"),))] > 0
    assert figures[("nanoweb_jobs_due", ())] == 1
    assert ("nanoweb_task_queue_depth", ()) in figures and ("nanoweb_api_rate_limited_total", ()) in figures
    client.force_login(staff)
    assert client.get("/metrics").status_code == 200
