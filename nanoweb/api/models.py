"""Personal API tokens, the keys that make creates idempotent, and webhook endpoints with their deliveries."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "nw_"


def digest(token: str) -> str:
    """Tokens carry 256 random bits: a plain SHA-256 is enough (no slow hash), and it lets a
    request find its token by one indexed lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    class Scope(models.TextChoices):
        READ = "read", "Read"
        GENERATE = "generate", "Read and generate"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=12)  # the token's first characters, to recognise it in lists
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_from = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, *, user, name: str, scope: str, expires_at=None) -> tuple[ApiToken, str]:
        """A new token and its secret, which is shown once and stored only as its digest."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, scope=scope, prefix=secret[:10], digest=digest(secret), expires_at=expires_at
        )
        return token, secret

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        return "expired" if self.expired else "active"

    def may_generate(self) -> bool:
        return self.scope == self.Scope.GENERATE

    def revoke(self) -> bool:
        return bool(ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()))

    def used(self, address: str | None) -> None:
        """Note the use; at most once a minute per token and address, so that reads stay reads."""
        now = timezone.now()
        if self.last_used_from == address and self.last_used_at and now - self.last_used_at < timedelta(minutes=1):
            return
        ApiToken.objects.filter(pk=self.pk).update(last_used_at=now, last_used_from=address)


class IdempotencyKey(models.Model):
    """A create's `Idempotency-Key`: a retry with the same key answers the first create's jobs."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)  # of the request, so that a reused key with another body is refused
    jobs = models.JSONField(default=list)
    batch = models.ForeignKey("batches.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_create_per_idempotency_key")]


EVENTS = ("job.succeeded", "job.failed", "job.canceled", "batch.finished")


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    """A URL told about jobs ending and batches finishing: its owner's, or (`team`, staff only) everyone's."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)
    team = models.BooleanField(default=False)
    secret = models.CharField(max_length=80, default=new_secret)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint: its body (the same on every attempt), and the last answer."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=20)
    generation = models.ForeignKey("studio.Generation", null=True, on_delete=models.SET_NULL, related_name="+")
    batch = models.ForeignKey("batches.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When to try (again); while an attempt is out, when to take it up if its worker died. None: done.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    gave_up = models.BooleanField(default=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_answer = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="delivery_due", condition=models.Q(next_attempt_at__isnull=False)
            )
        ]

    @property
    def state(self) -> str:
        if self.delivered_at:
            return "delivered"
        if self.gave_up:
            return "gave up"
        return "retrying" if self.attempts else "pending"
