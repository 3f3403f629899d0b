"""Who hears that a job ended. `Generation.advance` calls `job_ended` once the final state has
committed; the webhooks (nanoweb.api, a layer above) listen from their app's start-up, so the
job engine imports nothing above it."""

from __future__ import annotations

from collections.abc import Callable

Listener = Callable[[int, str], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def job_ended(pk: int, status: str) -> None:
    for listener in _listeners:
        listener(pk, status)
