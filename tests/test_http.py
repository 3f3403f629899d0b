"""The outbound chokepoint: address guard, size caps, timeouts."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nanoweb.lib import http

pytestmark = pytest.mark.portable


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


class Recorder(ThreadingHTTPServer):
    """A real HTTP server on a loopback address: answers each path as told, and records what it got."""

    def __init__(self, host: str, routes: dict[str, tuple[int, dict[str, str], bytes]]):
        self.routes, self.received = routes, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.received.append((self.command, self.path, dict(self.headers)))
                status, headers, body = server.routes.get(self.path, (404, {}, b"no such path"))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        super().__init__((host, 0), Handler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}{path}"


@pytest.fixture
def servers(settings, monkeypatch):
    """Servers on 127.0.0.2 and 127.0.0.3 that the guard counts as public (as if they were a
    vendor and its CDN), and the guard on: every other loopback address stays private."""
    settings.ALLOW_PRIVATE_OUTBOUND = False
    really_public = http.public_address
    monkeypatch.setattr(http, "public_address", lambda address: str(address) in PUBLIC or really_public(address))
    started = []

    def start(host: str, routes) -> Recorder:
        started.append(Recorder(host, routes))
        return started[-1]

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


PUBLIC = {"127.0.0.2", "127.0.0.3"}


def test_a_redirect_to_a_private_address_is_refused_and_never_fetched(servers):
    internal = servers("127.0.0.1", {"/secret": (200, {}, b"internal metadata")})
    by_name = internal.url("/secret").replace("127.0.0.1", "localhost")
    vendor = servers("127.0.0.2", {
        "/result.png": (302, {"Location": internal.url("/secret")}, b""),
        "/by-name.png": (307, {"Location": by_name}, b""),
    })  # fmt: skip

    for path in ["/result.png", "/by-name.png"]:
        with pytest.raises(http.BlockedAddress):
            http.download(vendor.url(path))
    assert len(vendor.received) == 2 and internal.received == [], "the private address got no request"


def test_redirects_between_public_hosts_are_followed_without_the_api_key(servers):
    cdn = servers("127.0.0.3", {"/file.png": (200, {"Content-Type": "image/png"}, b"the image")})
    vendor = servers("127.0.0.2", {})
    vendor.routes.update({
        "/start": (301, {"Location": "/moved"}, b""),
        "/moved": (302, {"Location": cdn.url("/file.png")}, b""),
    })  # fmt: skip
    response = http.request("GET", vendor.url("/start"), headers={"x-api-key": "sk-secret"}, redirects=5)

    assert (response.status_code, response.content) == (200, b"the image")
    assert [path for _, path, _ in vendor.received] == ["/start", "/moved"]
    assert all(headers.get("x-api-key") == "sk-secret" for _, _, headers in vendor.received), "same host: kept"
    [(_, _, to_cdn)] = cdn.received
    assert "x-api-key" not in {name.lower() for name in to_cdn}, "the key never goes to another host"


def test_api_calls_follow_no_redirect(servers):
    elsewhere = servers("127.0.0.3", {"/v1/jobs": (200, {}, b"{}")})
    vendor = servers("127.0.0.2", {"/v1/jobs": (307, {"Location": elsewhere.url("/v1/jobs")}, b"")})
    response = http.request("POST", vendor.url("/v1/jobs"), headers={"Authorization": "Bearer sk-secret"}, json={})
    assert response.status_code == 307
    assert elsewhere.received == []


def test_a_redirect_loop_ends(servers):
    vendor = servers("127.0.0.2", {"/a": (302, {"Location": "/b"}, b""), "/b": (302, {"Location": "/a"}, b"")})
    with pytest.raises(http.OutboundError, match="redirects"):
        http.download(vendor.url("/a"))
    assert len(vendor.received) == 6, "the first request and five redirects"
