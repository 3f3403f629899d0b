from __future__ import annotations

from django.db import models


class SignInPolicy(models.Model):
    """The single sign-on rule staff change in the app (one row; the identity provider itself is
    configured by settings)."""

    invited_only = models.BooleanField(
        default=False,
        help_text="Off: a first sign-in from an allowed domain or group creates the member, with the default "
        "budget. On: only people staff have added (with the same email address) may sign in with single sign-on.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sign-in policy"
        verbose_name_plural = "sign-in policy"

    def __str__(self) -> str:
        return "Invited only" if self.invited_only else "Anyone allowed may join"

    @classmethod
    def current(cls) -> SignInPolicy:
        return cls.objects.get_or_create(pk=1)[0]
