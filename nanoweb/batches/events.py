"""Who hears that a batch finished (every job of it ended): `batch_finished`, a Django signal with
the `batch_id`, sent robustly and once per batch. The batches app hears the studio's `job_ended`;
the webhooks (nanoweb.api, a layer above) connect here, so nothing below imports the API."""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

from nanoweb.batches import service
from nanoweb.batches.models import Batch, BatchItem

batch_finished = Signal()


def job_ended(pk: int, status: str, **signal: Any) -> None:
    """A job's end has committed: if it was its batch's last, say so, once."""
    batch_id = BatchItem.objects.filter(generation_id=pk).values_list("batch_id", flat=True).first()
    if batch_id is not None and service.record_finished(batch_id):
        batch_finished.send_robust(Batch, batch_id=batch_id)
