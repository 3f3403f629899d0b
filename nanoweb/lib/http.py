"""The one place nanoweb makes outbound HTTP requests.

Timeouts, a user agent, response size caps, the private-address guard, pooled
connections, and a retry of connection failures for requests safe to repeat.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

Response = requests.Response
USER_AGENT = "nanoweb/1.0 (+self-hosted image studio)"
MAX_API_BYTES = 2 * 1024 * 1024


class OutboundError(Exception):
    pass


class Timeout(OutboundError):
    pass


class ConnectFailed(OutboundError):
    """No connection was made: the request surely did not reach the server."""


class TooLarge(OutboundError):
    pass


class BlockedAddress(OutboundError):
    pass


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(pool_connections=32, pool_maxsize=64, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# urllib3's pools are thread-safe; the sweep's threads share these connections.
_SESSION = _session()


def check_address(url: str) -> None:
    """Refuse URLs that resolve to private, loopback or link-local addresses.

    The check resolves the name before the request; a DNS answer that changes in
    between (rebinding) is not covered.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BlockedAddress(f"not an http(s) URL: {url[:200]}")
    if settings.ALLOW_PRIVATE_OUTBOUND:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise OutboundError(f"cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise BlockedAddress(f"{parts.hostname} resolves to a non-public address")


def request(
    method: str,
    url: str,
    *,
    retry_connect: bool | None = None,
    max_bytes: int = MAX_API_BYTES,
    timeout: float | None = None,
    **kwargs: Any,
) -> Response:
    """Send a request and read the whole body (at most max_bytes).

    Connection failures are retried twice for GETs, or when retry_connect says the
    request is safe to repeat; anything else is the caller's to handle.
    """
    check_address(url)
    attempts = 3 if (retry_connect if retry_connect is not None else method == "GET") else 1
    timeout = timeout or settings.OUTBOUND_TIMEOUT
    for attempt in range(attempts):
        try:
            response = _SESSION.request(method, url, timeout=(min(timeout, 10), timeout), stream=True, **kwargs)
            response._content = _read_capped(response, max_bytes)
            return response
        except (requests.ConnectTimeout, requests.ConnectionError) as exc:
            if attempt + 1 == attempts:
                refused = isinstance(exc, requests.ConnectTimeout) or _never_connected(exc)
                error = ConnectFailed if refused else OutboundError
                raise error(f"cannot connect to {urlsplit(url).netloc}: {exc}") from exc
            time.sleep(0.2 * 2**attempt)
        except requests.Timeout as exc:
            raise Timeout(f"{urlsplit(url).netloc} did not answer in {timeout:.0f} s") from exc
        except requests.RequestException as exc:
            raise OutboundError(str(exc)) from exc
    raise AssertionError("unreachable")


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether it failed before anything was sent (refused, no route, DNS): urllib3 says so
    in the reason of the MaxRetryError that requests wraps."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def download(url: str, *, max_bytes: int | None = None) -> tuple[bytes, str]:
    """Fetch a result file: its bytes and the Content-Type the server gave."""
    response = request("GET", url, max_bytes=max_bytes or settings.MAX_RESULT_BYTES)
    if response.status_code != 200:
        raise OutboundError(f"HTTP {response.status_code} from {urlsplit(url).netloc}")
    return response.content, response.headers.get("Content-Type", "")


def _read_capped(response: Response, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise TooLarge(f"response of {declared} bytes exceeds the {max_bytes} byte limit")
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"response exceeds the {max_bytes} byte limit")
            chunks.append(chunk)
    finally:
        response.close()
    return b"".join(chunks)
