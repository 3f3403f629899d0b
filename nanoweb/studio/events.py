"""Who hears that a job ended. `Generation.advance` calls `job_ended` once the final state has
committed; the webhooks (nanoweb.api) and batches (nanoweb.batches), layers above, listen from
their apps' start-up, so the job engine imports nothing above it."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)
Listener = Callable[[int, str], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def job_ended(pk: int, status: str) -> None:
    # One listener's failure (a webhook's) must not keep the others (a batch's end) from hearing.
    for listener in _listeners:
        try:
            listener(pk, status)
        except Exception:
            log.exception("A listener failed on the end of job %s", pk)
