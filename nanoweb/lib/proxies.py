"""Who is asking, and over what: believed from the forwarding headers only when the request
comes from a proxy we were told about (TRUSTED_PROXIES)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks(tuple(settings.TRUSTED_PROXIES)))


class TrustedProxyMiddleware:
    """From a trusted proxy: X-Forwarded-Proto stands (SECURE_PROXY_SSL_HEADER reads it), and
    REMOTE_ADDR becomes the client the proxies name: the last address in X-Forwarded-For that is
    not itself a trusted proxy (what comes before it, the client could have made up). An entry
    with a port (`203.0.113.1:1234`, `[2001:db8::1]:443`) names its address; one that names no
    address (`unknown`) ends the walk at the address that connected to it. From anyone else both
    headers are dropped, so they can neither fake HTTPS nor a sign-in address."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if trusted(meta.get("REMOTE_ADDR", "")):
            for entry in reversed(meta.get("HTTP_X_FORWARDED_FOR", "").split(",")):
                address = address_in(entry)
                if address is None:
                    break
                meta["REMOTE_ADDR"] = address
                if not trusted(address):
                    break
        else:
            meta.pop("HTTP_X_FORWARDED_PROTO", None)
            meta.pop("HTTP_X_FORWARDED_FOR", None)
        return self.get_response(request)


def address_in(entry: str) -> str | None:
    """The IP address an X-Forwarded-For entry names (with or without a port), or None."""
    text = entry.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
