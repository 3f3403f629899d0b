"""The outbound chokepoint: address guard, size caps, timeouts."""

from __future__ import annotations

import socket
import threading

import pytest

from nanoweb.lib import http


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8100/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest",
        "http://[::1]/",
    ],
)
def test_private_and_loopback_addresses_are_refused_unless_allowed(settings, url):
    settings.ALLOW_PRIVATE_OUTBOUND = False
    with pytest.raises(http.BlockedAddress):
        http.request("GET", url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x"])
def test_only_http_urls_are_fetched(settings, url):
    settings.ALLOW_PRIVATE_OUTBOUND = True
    with pytest.raises(http.BlockedAddress):
        http.request("GET", url)


def test_a_download_larger_than_the_cap_is_refused(simulator):
    url = simulator.publish(b"x" * 5000, "png")
    with pytest.raises(http.TooLarge):
        http.download(url, max_bytes=4000)
    assert http.download(url, max_bytes=5000)[0] == b"x" * 5000


def test_a_server_that_never_answers_times_out(settings):
    settings.OUTBOUND_TIMEOUT = 0.5
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    try:
        with pytest.raises(http.Timeout):
            http.request("GET", f"http://127.0.0.1:{silent.getsockname()[1]}/")
    finally:
        silent.close()


def test_a_refused_connection_is_an_outbound_error():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(http.OutboundError, match="cannot connect"):
        http.request("GET", f"http://127.0.0.1:{port}/")
