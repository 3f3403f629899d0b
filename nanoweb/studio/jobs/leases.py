"""Leases: who works on what now, and recovery only once a holder is dead.

One kind of lease, three uses. Each has a holder token and an expiry that its holder
renews while it lives; nothing is taken from a holder before its expiry has passed.

- Named leases (a `Lease` row each): the poll sweep and the renderer, one task at a time.
  `wake` starts the task unless a live holder has the lease.
- Job holds: a process working on one job outside the sweep's claim (a create in flight, a
  synchronous call of 10-60 s, a finishing task) sets the job's `claim` to this process's
  token and its `due_at` a lease ahead (`hold_end`). A heartbeat thread renews every
  job the process holds; if the process dies, the hold lapses within HOLD_SECONDS and the
  sweep, which comes back to every job at `due_at`, recovers the job.
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
from django_q.tasks import async_task

from nanoweb.studio.models import Lease

log = logging.getLogger(__name__)

# --- named leases -------------------------------------------------------------------


def wake(name: str, task: str, *, first: timedelta) -> None:
    """Start `task` (a dotted path, called with its token) holding the lease `name`, unless
    a live holder has it. The first lease covers the time until the task starts; the task
    then renews it. Cheap: safe to call from anywhere, often."""
    now = timezone.now()
    if Lease.objects.filter(name=name, expires_at__gt=now).exists():
        return  # at work: it sees the new work before it stops
    token = uuid.uuid4().hex
    Lease.objects.get_or_create(name=name, defaults={"expires_at": now})
    if Lease.objects.filter(name=name, expires_at__lte=now).update(holder=token, expires_at=now + first):
        async_task(task, token, save=False, task_name=f"{name}-{token[:8]}")


def renew(name: str, token: str, seconds: float) -> bool:
    """Extend the lease if `token` still holds it."""
    expires = timezone.now() + timedelta(seconds=seconds)
    return bool(Lease.objects.filter(name=name, holder=token).update(expires_at=expires))


def release(name: str, token: str, **fields) -> None:
    Lease.objects.filter(name=name, holder=token).update(expires_at=timezone.now(), **fields)


# --- job holds ----------------------------------------------------------------------

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


def hold_end() -> datetime:
    return timezone.now() + timedelta(seconds=settings.HOLD_SECONDS)


@contextmanager
def holding(generation_id: int) -> Iterator[None]:
    """Keep renewing this job's hold while the block runs (the caller set its claim to
    `token()` and its `due_at` to `hold_end()`)."""
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
            Generation.objects.filter(pk__in=held, claim=mine).update(due_at=hold_end())
        except Exception:
            log.exception("could not renew the hold of jobs %s", held)
        finally:
            connection.close()
