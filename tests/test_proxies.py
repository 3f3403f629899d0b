"""X-Forwarded-Proto and X-Forwarded-For are believed only from the proxies in TRUSTED_PROXIES."""

from __future__ import annotations

import pytest
from django.test import Client

PROXY, STRANGER = "127.0.0.1", "203.0.113.9"


@pytest.fixture
def production(settings):
    settings.SECURE_SSL_REDIRECT = True


def test_only_a_trusted_proxy_can_say_the_request_came_over_https(client, production):
    assert client.get("/login", REMOTE_ADDR=STRANGER, HTTP_X_FORWARDED_PROTO="https").status_code == 301
    assert client.get("/login", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https").status_code == 200


def test_the_trusted_proxies_are_a_setting_of_addresses_and_networks(client, production, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.10"]
    for address, believed in [("10.1.2.3", True), ("192.0.2.10", True), ("192.0.2.11", False), (PROXY, False)]:
        status = client.get("/login", REMOTE_ADDR=address, HTTP_X_FORWARDED_PROTO="https").status_code
        assert status == (200 if believed else 301), address


def guess(client: Client, username: str, **meta) -> int:
    return client.post("/login", {"username": username, "password": "wrong"}, **meta).status_code


def test_a_guesser_cannot_dodge_the_lockout_with_made_up_forwarded_addresses(owner):
    answers = [
        guess(Client(), owner.username, REMOTE_ADDR=STRANGER, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}") for n in range(6)
    ]
    assert answers[-1] == 429, "the stranger's own address is counted, not what it claims"


def test_behind_a_trusted_proxy_each_client_address_is_counted_apart(owner):
    for _ in range(5):
        guess(Client(), owner.username, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"spoofed, 198.51.100.1, {PROXY}")
    assert guess(Client(), owner.username, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1") == 429
    assert guess(Client(), owner.username, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.2") == 200
