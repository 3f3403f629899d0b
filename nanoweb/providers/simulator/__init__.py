"""The provider simulator (see server.py)."""

from urllib.parse import urlsplit


def base_url_for(simulator_url: str, kind: str, vendor_base_url: str) -> str:
    """An account's base URL on the simulator: /<kind>, then the vendor's own base path."""
    return f"{simulator_url.rstrip('/')}/{kind}{urlsplit(vendor_base_url).path}"
