"""Jobs a process works on outside the sweep's claim, with a lease it keeps renewing.

A synchronous provider call (Gemini answers the create call with the image, 10–40 s
later) and a finishing task hold their job under this process's token. While the process
lives, a heartbeat thread pushes the job's `next_poll_at` a lease ahead; if the process
dies, the lease lapses within HOLD_SECONDS and the sweep, which comes back to every job at
`next_poll_at`, ends the lost call (with a refund) or hands the finishing to another task.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

log = logging.getLogger(__name__)
_lock = threading.Lock()
_pid = 0
_token = ""
_held: set[int] = set()


def token() -> str:
    """This process's holder token (a forked child gets its own)."""
    global _pid, _token
    with _lock:
        if _pid != os.getpid():
            _pid, _token = os.getpid(), uuid.uuid4().hex
            _held.clear()
            threading.Thread(target=_beat, args=(_token,), name="nanoweb-holds", daemon=True).start()
        return _token


def lease_end() -> datetime:
    return timezone.now() + timedelta(seconds=settings.HOLD_SECONDS)


@contextmanager
def holding(generation_id: int) -> Iterator[None]:
    """Keep renewing this job's lease while the block runs (the caller set its claim to
    `token()` and its `next_poll_at` to `lease_end()`)."""
    token()
    with _lock:
        _held.add(generation_id)
    try:
        yield
    finally:
        with _lock:
            _held.discard(generation_id)


def _beat(mine: str) -> None:
    from nanoweb.studio.models import Generation

    while True:
        time.sleep(settings.HOLD_SECONDS / 4)
        with _lock:
            if mine != _token:
                return  # a forked child's copy of its parent's thread does not exist; this is the old token
            held = list(_held)
        if not held:
            continue
        try:
            Generation.objects.filter(pk__in=held, claim=mine).update(next_poll_at=lease_end())
        except Exception:
            log.exception("could not renew the lease of jobs %s", held)
        finally:
            connection.close()
