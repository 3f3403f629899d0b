from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from nanoweb.boards.models import Board
from nanoweb.providers.models import ProviderAccount
from nanoweb.studio.models import Generation


class Batch(models.Model):
    """Many jobs made as one: a list of prompts (pasted or a CSV) or one prompt on several
    models side by side. Its jobs are ordinary jobs (`BatchItem`); it is what its owner
    follows, cancels and downloads as one."""

    class Kind(models.TextChoices):
        LIST = "list", "List of prompts"
        COMPARE = "compare", "Side by side"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="batches")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.LIST)
    title = models.CharField(max_length=200)
    board = models.ForeignKey(Board, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Sent through the vendor's own batch API (Gemini): half the price, within a day.
    cheaper = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # When its last job ended (set once, by `service.record_finished`: the batch.finished event's guard).
    finished_at = models.DateTimeField(null=True, blank=True)
    jobs = models.ManyToManyField(Generation, through="BatchItem", related_name="+")

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("batch", args=[self.pk])


class BatchItem(models.Model):
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    generation = models.OneToOneField(Generation, on_delete=models.CASCADE, related_name="batch_item")
    line = models.PositiveIntegerField(help_text="The row's line in what was pasted or uploaded.")

    class Meta:
        ordering = ["line", "pk"]


class VendorBatch(models.Model):
    """One batch at the vendor (Gemini's `batches/...`): some of a batch's jobs, one model."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="vendor_batches")
    account = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200, help_text="The vendor's id of the batch.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
