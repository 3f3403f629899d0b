"""Who hears that a batch finished (every job of it ended). The batches app listens to the
studio's job-ended event; the webhooks (nanoweb.api, a layer above) listen here, so nothing
below imports the API."""

from __future__ import annotations

import logging
from collections.abc import Callable

from nanoweb.batches import service
from nanoweb.batches.models import BatchItem

log = logging.getLogger(__name__)
Listener = Callable[[int], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def job_ended(pk: int, status: str) -> None:
    """A job's end has committed: if it was its batch's last, tell the listeners, once."""
    batch_id = BatchItem.objects.filter(generation_id=pk).values_list("batch_id", flat=True).first()
    if batch_id is None or not service.record_finished(batch_id):
        return
    for listener in _listeners:
        try:
            listener(batch_id)
        except Exception:
            log.exception("A listener failed on the end of batch %s", batch_id)
