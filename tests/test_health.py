"""/healthz: up or down for anyone; what is up or down for staff and monitors holding the token."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tests.conftest import wait_for


@pytest.fixture
def no_workers(db):
    cache.clear()  # stats a finished test's worker left behind


def test_anonymous_callers_and_members_learn_only_whether_it_is_up(client, owner, no_workers):
    assert (client.get(reverse("healthz")).status_code, client.get(reverse("healthz")).json()) == (503, {"ok": False})
    client.force_login(owner)
    assert client.get(reverse("healthz")).json() == {"ok": False}


def test_staff_see_what_is_down(client, staff, no_workers):
    client.force_login(staff)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] and body["broker"]["ok"] and "vendor" in body["database"]
    assert body["workers"] == {"ok": False, "clusters": 0, "workers": 0, "error": "no worker cluster is running"}


def test_a_monitor_with_the_token_sees_the_details(client, settings, no_workers):
    settings.HEALTH_TOKEN = "monitor-token-1234"
    with_token = client.get(reverse("healthz"), HTTP_AUTHORIZATION="Bearer monitor-token-1234").json()
    assert with_token["workers"]["ok"] is False and "broker" in with_token
    assert client.get(reverse("healthz"), HTTP_AUTHORIZATION="Bearer wrong").json() == {"ok": False}
    settings.HEALTH_TOKEN = ""
    assert client.get(reverse("healthz"), HTTP_AUTHORIZATION="Bearer ").json() == {"ok": False}, (
        "no token set: none works"
    )


def test_health_is_200_once_a_worker_cluster_runs(worker, staff):
    anonymous, staff_client = Client(), Client()
    staff_client.force_login(staff)
    wait_for(lambda: anonymous.get(reverse("healthz")).status_code == 200, timeout=20)
    assert anonymous.get(reverse("healthz")).json() == {"ok": True}
    # A cluster an earlier test killed (SIGKILL) leaves its last stat for its 3 s in the cache.
    this_cluster = {"ok": True, "clusters": 1, "workers": 2}
    wait_for(lambda: staff_client.get(reverse("healthz")).json()["workers"] == this_cluster, timeout=20)
