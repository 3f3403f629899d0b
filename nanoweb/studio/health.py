"""What /healthz reports: the database, the task broker and the worker clusters."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.status import Stat


def checks() -> dict[str, dict[str, Any]]:
    return {"database": database(), "broker": broker(), "workers": workers()}


def database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def broker() -> dict[str, Any]:
    try:
        task_broker = get_broker()
        return {"ok": bool(task_broker.ping()), "kind": task_broker.info(), "queued": task_broker.queue_size()}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def workers() -> dict[str, Any]:
    """Clusters publish their status every few seconds; a missing one has stopped."""
    try:
        clusters = [s for s in Stat.get_all() if s.status not in (Conf.STOPPED, Conf.STOPPING)]
    except Exception as exc:
        return {"ok": False, "error": str(exc)}
    return {
        "ok": bool(clusters),
        "clusters": len(clusters),
        "workers": sum(len(s.workers) for s in clusters),
        **({} if clusters else {"error": "no worker cluster is running"}),
    }
