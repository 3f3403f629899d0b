"""Each member's storage quota: what their uploaded reference images may take on disk."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models

MAX_QUOTA_MB = 1024 * 1024  # a terabyte: anything above is a typo


class StorageQuota(models.Model):
    """A member's own quota; members without one have STORAGE_QUOTA_BYTES."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="storage_quota")
    megabytes = models.PositiveIntegerField(
        validators=[MaxValueValidator(MAX_QUOTA_MB)],
        help_text="What this member's uploaded reference images may take on disk, in MB (0: no uploads).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user}: {self.megabytes} MB"


def quota_bytes(user) -> int:
    """The bytes this member's uploads may take in all."""
    quota = StorageQuota.objects.filter(user=user).values_list("megabytes", flat=True).first()
    return settings.STORAGE_QUOTA_BYTES if quota is None else quota * 1024 * 1024
