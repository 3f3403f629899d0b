"""Who calls the API: a personal token in `Authorization: Bearer <token>`, checked, noted and
rate-limited here. Every refusal is an `ApiError` with a stable code (see api.py)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.security import HttpBearer

from nanoweb.api.models import ApiToken, digest


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, fields: dict | None = None, headers=None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields
        self.headers = headers or {}


RATE_LIMITED_COUNTER = "api-rate-limited-total"


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        found = ApiToken.objects.select_related("user").filter(digest=digest(token)).first()
        if found is None or not found.user.is_active:
            raise ApiError(401, "token_invalid", "This token is not valid.")
        if found.revoked_at:
            raise ApiError(401, "token_revoked", "This token was revoked.")
        if found.expired:
            raise ApiError(401, "token_expired", "This token has expired.")
        limit(found)
        found.used(request.META.get("REMOTE_ADDR"))
        request.user = found.user
        return found


def limit(token: ApiToken) -> None:
    """At most API_RATE_LIMIT requests per token in each minute (a fixed window in the shared cache)."""
    now = time.time()
    window = int(now // 60)
    key = f"api-rate:{token.digest[:24]}:{window}"  # not the pk: a test database reuses those
    try:
        count = cache.incr(key)
    except ValueError:  # the window's first request (or another's, just now)
        count = 1 if cache.add(key, 1, timeout=120) else cache.incr(key)
    if count > settings.API_RATE_LIMIT:
        cache.add(RATE_LIMITED_COUNTER, 0, timeout=None)
        try:
            cache.incr(RATE_LIMITED_COUNTER)
        except ValueError:
            pass
        wait = max(1, int((window + 1) * 60 - now) + 1)
        raise ApiError(
            429, "rate_limited", f"Too many requests with this token: at most {settings.API_RATE_LIMIT} a minute.",
            headers={"Retry-After": str(wait)},
        )  # fmt: skip


def require_generate(request: HttpRequest) -> None:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    if not token.may_generate():
        raise ApiError(403, "insufficient_scope", "This token may only read: create one with the generate scope.")
