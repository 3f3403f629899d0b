from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from nanoweb.providers.base import Adapter
from nanoweb.providers.registry import ADAPTERS, adapter_class


class ProviderAccount(models.Model):
    """A key at one provider. The key never leaves the server: not rendered, not logged."""

    kind = models.CharField(max_length=20, choices=[(k, a.label) for k, a in ADAPTERS.items()])
    name = models.CharField(max_length=80, unique=True)
    base_url = models.URLField(help_text="The vendor's API root; change it for proxies, staging or the simulator.")
    api_key = models.CharField(max_length=500)
    enabled = models.BooleanField(default=True)
    rate_limit = models.FloatField(
        default=10.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(1000)],
        help_text="Requests per second nanoweb may send this account (submits and status reads together).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def adapter_class(self) -> type[Adapter]:
        return adapter_class(self.kind)

    def adapter(self) -> Adapter:
        return self.adapter_class(base_url=self.base_url, api_key=self.api_key)
