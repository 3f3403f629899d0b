"""X-Forwarded-Proto and X-Forwarded-For are believed only from the proxies in TRUSTED_PROXIES."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client, RequestFactory

from nanoweb.lib.proxies import TrustedProxyMiddleware

PROXY, STRANGER = "127.0.0.1", "203.0.113.9"


@pytest.fixture
def production(settings):
    settings.SECURE_SSL_REDIRECT = True


@pytest.fixture
def behind_proxy(settings):
    """A reverse proxy on this host, named in TRUSTED_PROXIES (nothing is trusted by default)."""
    settings.TRUSTED_PROXIES = [PROXY]


def test_only_a_trusted_proxy_can_say_the_request_came_over_https(client, production, behind_proxy):
    assert client.get("/login", REMOTE_ADDR=STRANGER, HTTP_X_FORWARDED_PROTO="https").status_code == 301
    assert client.get("/login", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https").status_code == 200


def test_the_trusted_proxies_are_a_setting_of_addresses_and_networks(client, production, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.10"]
    for address, believed in [("10.1.2.3", True), ("192.0.2.10", True), ("192.0.2.11", False), (PROXY, False)]:
        status = client.get("/login", REMOTE_ADDR=address, HTTP_X_FORWARDED_PROTO="https").status_code
        assert status == (200 if believed else 301), address


def client_seen(forwarded_for: str) -> str:
    """The address the views see for a request from the proxy with this X-Forwarded-For."""
    seen = []
    TrustedProxyMiddleware(lambda request: seen.append(request.META["REMOTE_ADDR"]))(
        RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for)
    )
    return seen[0]


def guess(client: Client, username: str, **meta) -> int:
    return client.post("/login", {"username": username, "password": "wrong"}, **meta).status_code


def test_a_guesser_cannot_dodge_the_lockout_with_made_up_forwarded_addresses(owner):
    answers = [
        guess(Client(), owner.username, REMOTE_ADDR=STRANGER, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}") for n in range(6)
    ]
    assert answers[-1] == 429, "the stranger's own address is counted, not what it claims"


def test_behind_a_trusted_proxy_each_client_address_is_counted_apart(owner, behind_proxy):
    for _ in range(5):
        guess(Client(), owner.username, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"spoofed, 198.51.100.1, {PROXY}")
    assert guess(Client(), owner.username, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1") == 429
    assert guess(Client(), owner.username, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.2") == 200


def test_no_proxy_is_trusted_by_default_not_even_one_on_this_host(client, production):
    assert django_settings.TRUSTED_PROXIES == []
    assert client.get("/login", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https").status_code == 301


def test_a_guesser_on_this_host_cannot_rotate_forwarded_addresses_past_the_lockout(owner):
    """The first spoofing pattern: from 127.0.0.1, a new X-Forwarded-For every five guesses."""
    answers = [
        guess(Client(), owner.username, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"198.51.100.{n // 5}")
        for n in range(30)
    ]
    assert answers.count(200) == 4, "four wrong passwords, then locked out: the connecting address counts"


@pytest.mark.parametrize("entry", ["unknown", "203.0.113.1:1234, unknown", "", "not an address"])
def test_a_malformed_forwarded_entry_from_a_trusted_proxy_is_the_address_it_came_from(entry, behind_proxy):
    assert client_seen(entry) == PROXY


@pytest.mark.parametrize(
    ("entry", "client_address"),
    [("203.0.113.1:1234", "203.0.113.1"), ("[2001:db8::1]:443", "2001:db8::1"), ("2001:db8::2", "2001:db8::2"),
     ("spoofed, 203.0.113.5:80", "203.0.113.5")],
)  # fmt: skip
def test_a_forwarded_entry_with_a_port_names_its_client(entry, client_address, behind_proxy):
    assert client_seen(entry) == client_address


def test_clients_whose_proxy_adds_ports_are_counted_apart(owner, behind_proxy):
    """The second spoofing pattern: entries with a port fell back to the proxy's address, one
    bucket for everyone, so a guesser locked everyone out."""
    for n in range(6):
        guess(Client(), owner.username, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"203.0.113.1:{1000 + n}")
    assert guess(Client(), owner.username, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.1:2000") == 429
    assert guess(Client(), owner.username, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.7:2000") == 200
