from __future__ import annotations

from django.core.cache import cache
from django.urls import reverse

from tests.conftest import wait_for


def test_health_is_503_without_workers(client, db):
    cache.clear()  # stats a finished test's worker left behind
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] and body["broker"]["ok"]
    assert body["workers"] == {"ok": False, "clusters": 0, "workers": 0, "error": "no worker cluster is running"}


def test_health_is_200_once_a_worker_cluster_runs(client, worker):
    response = wait_for(lambda: (r := client.get(reverse("healthz"))).status_code == 200 and r, timeout=20)
    assert response.json()["workers"]["clusters"] == 1
    wait_for(lambda: client.get(reverse("healthz")).json()["workers"]["workers"] == 2, timeout=20)
