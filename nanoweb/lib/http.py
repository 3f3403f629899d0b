"""The one place nanoweb makes outbound HTTP requests.

Timeouts, a user agent, response size caps, the private-address guard (on every redirect
too), pooled connections, and a retry of connection failures for requests safe to repeat.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

Response = requests.Response
USER_AGENT = "nanoweb/1.0 (+self-hosted image studio)"
MAX_API_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5  # for result downloads: a CDN may redirect once or twice


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


class NotThereYet(OutboundError):
    """The file is not served yet (404, 408, 425, 429, a 5xx): it may be there a moment later."""


LATE_FILE_STATUSES = {404, 408, 425, 429} | set(range(500, 600))


# Error texts name the host and port only: a URL's user info and query string (where keys and
# signatures travel) are cut from anything an exception says, urllib3's own messages included.
_USER_INFO = re.compile(r"(?<=//)[^/?#@\s'\"]*@")
_QUERY = re.compile(r"\?[^\s'\"()=]*=[^\s'\"()]*")


def scrub(text: str) -> str:
    """`text` without user info or query strings in the URLs it quotes."""
    return _QUERY.sub("", _USER_INFO.sub("", text))


def host(url: str) -> str:
    """The host and port of `url`, for error texts."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


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
        raise BlockedAddress(f"not an http(s) URL: {scrub(url)[:200]}")
    if settings.ALLOW_PRIVATE_OUTBOUND:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ConnectFailed(f"cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        if not public_address(ipaddress.ip_address(info[4][0])):
            raise BlockedAddress(f"{parts.hostname} resolves to a non-public address")


def public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global


def request(
    method: str,
    url: str,
    *,
    retry_connect: bool | None = None,
    max_bytes: int = MAX_API_BYTES,
    timeout: float | None = None,
    redirects: int = 0,
    **kwargs: Any,
) -> Response:
    """Send a request and read the whole body (at most max_bytes).

    Connection failures are retried twice for GETs, or when retry_connect says the
    request is safe to repeat; anything else is the caller's to handle.

    Redirects are followed only when asked (`redirects` hops at most; the vendors' APIs never
    redirect, so their answers come back as they are). Every hop's address passes the guard
    again, and the headers given here (an API key) go to the first URL's origin only.
    """
    attempts = 3 if (retry_connect if retry_connect is not None else method == "GET") else 1
    timeout = timeout or settings.OUTBOUND_TIMEOUT
    origin = _origin(url)
    for _ in range(redirects + 1):
        response = _send(method, url, attempts=attempts, max_bytes=max_bytes, timeout=timeout, **kwargs)
        if not (redirects and response.is_redirect):
            return response
        url = urljoin(url, response.headers["Location"])
        if _origin(url) != origin:
            kwargs.pop("headers", None)
            kwargs.pop("auth", None)
    raise OutboundError(f"more than {redirects} redirects from {origin}")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _send(method: str, url: str, *, attempts: int, max_bytes: int, timeout: float, **kwargs: Any) -> Response:
    check_address(url)
    for attempt in range(attempts):
        try:
            response = _SESSION.request(
                method, url, timeout=(min(timeout, 10), timeout), stream=True, allow_redirects=False, **kwargs
            )
            response._content = _read_capped(response, max_bytes)
            return response
        except (requests.ConnectTimeout, requests.ConnectionError) as exc:
            if attempt + 1 == attempts:
                refused = isinstance(exc, requests.ConnectTimeout) or _never_connected(exc)
                error = ConnectFailed if refused else OutboundError
                raise error(f"cannot connect to {host(url)}: {scrub(str(exc))}") from exc
            time.sleep(0.2 * 2**attempt)
        except requests.Timeout as exc:
            raise Timeout(f"{host(url)} did not answer in {timeout:.0f} s") from exc
        except requests.RequestException as exc:
            raise OutboundError(scrub(str(exc))) from exc
    raise AssertionError("unreachable")


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether it failed before anything was sent (refused, no route, DNS): urllib3 says so
    in the reason of the MaxRetryError that requests wraps."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def download(url: str, *, max_bytes: int | None = None) -> tuple[bytes, str]:
    """Fetch a result file: its bytes and the Content-Type the server gave."""
    response = request("GET", url, max_bytes=max_bytes or settings.MAX_RESULT_BYTES, redirects=MAX_REDIRECTS)
    if response.status_code != 200:
        error = NotThereYet if response.status_code in LATE_FILE_STATUSES else OutboundError
        raise error(f"HTTP {response.status_code} from {host(url)}")
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
