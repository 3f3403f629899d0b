"""Signed webhooks: when a job ends or a batch finishes, each endpoint that asked is sent one event, signed like
Stripe's, through the one outbound HTTP module (`lib/http.py`, with its private-address guard).

    Nanoweb-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the endpoint's secret>

An answer other than 2xx is tried again with backoff (WEBHOOK_RETRY_SECONDS, doubling, at most two
hours apart) until a day has passed since the event. The first attempt is a django-q task; later
ones are made by `deliver_due`, which the cluster's scheduler runs every minute.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from nanoweb.api.models import WebhookDelivery, WebhookEndpoint
from nanoweb.api.schemas import batch_out, job_out
from nanoweb.batches.models import Batch
from nanoweb.lib import http
from nanoweb.studio.models import Generation

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "Nanoweb-Signature"
GIVE_UP_AFTER = timedelta(days=1)
MAX_BACKOFF = 2 * 3600.0
IN_FLIGHT = timedelta(seconds=60)  # an attempt whose worker died is taken up again after this
TIMEOUT = 10.0
DUE_BATCH = 200


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300) -> bool:
    """What a receiver does (the README has it in a few lines): the signature matches and is recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp = fields.get("t", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, body, int(timestamp)).partition(",v1=")[2]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def backoff(attempts: int) -> float:
    return min(settings.WEBHOOK_RETRY_SECONDS * 2 ** (attempts - 1), MAX_BACKOFF)


def endpoints_for(owner_id: int, event: str) -> list[WebhookEndpoint]:
    """The owner's endpoints, and the team endpoints of staff (who may see every job and batch)."""
    found = WebhookEndpoint.objects.filter(active=True).filter(
        Q(owner_id=owner_id) | Q(team=True, owner__is_staff=True, owner__is_active=True)
    )
    return [endpoint for endpoint in found if event in endpoint.events]


def queue(endpoints: list[WebhookEndpoint], event: str, data: dict, **about: Generation | Batch) -> None:
    """One delivery of the event per endpoint, each sent by a task once they have committed."""
    body = json.dumps(
        {"id": str(uuid.uuid4()), "type": event, "created": timezone.now(), "data": data}, cls=DjangoJSONEncoder
    )
    now = timezone.now()
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(endpoint=endpoint, event=event, body=body, next_attempt_at=now, **about)
            for endpoint in endpoints
        )
        for delivery in deliveries:
            transaction.on_commit(
                functools.partial(async_task, deliver, delivery.pk, task_name=f"webhook-{delivery.pk}")
            )


def job_ended(pk: int, status: str, **signal: Any) -> None:
    """A job reached a final state (called after that committed): queue one delivery per endpoint."""
    event = f"job.{status}"
    job = Generation.objects.select_related("owner", "account").filter(pk=pk).first()
    if job is None or not (endpoints := endpoints_for(job.owner_id, event)):
        return
    queue(endpoints, event, job_out(job), generation=job)


def batch_finished(batch_id: int, **signal: Any) -> None:
    """Every job of a batch has ended (`nanoweb.batches.events` tells it once)."""
    batch = Batch.objects.select_related("owner").filter(pk=batch_id).first()
    if batch is None or not (endpoints := endpoints_for(batch.owner_id, "batch.finished")):
        return
    queue(endpoints, "batch.finished", batch_out(batch), batch=batch)


def deliver(pk: int) -> None:
    """One attempt, if the delivery is due and no one else is making it (a conditional claim)."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(pk=pk, next_attempt_at__lte=now).update(next_attempt_at=now + IN_FLIGHT)
    if not claimed:
        return
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=pk)
    endpoint = delivery.endpoint
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(endpoint.secret, body, int(time.time())),
        "Nanoweb-Event": delivery.event,
        "Nanoweb-Delivery": str(delivery.pk),
    }
    status, answer, final = None, "", False
    try:
        if not endpoint.active:
            raise http.BlockedAddress("the endpoint was switched off")
        response = http.request(
            "POST", endpoint.url, data=body, headers=headers, timeout=TIMEOUT, max_bytes=64 * 1024, retry_connect=False
        )
        status, answer = response.status_code, response.text[:300]
    except http.BlockedAddress as exc:  # a private address (or a switched-off endpoint): trying again will not help
        answer, final = f"Refused: {exc}", True
    except http.OutboundError as exc:
        answer = str(exc)[:300]
    attempts = delivery.attempts + 1
    fields = {"attempts": attempts, "last_attempt_at": now, "last_status": status, "last_answer": answer}
    if status is not None and 200 <= status < 300:
        fields.update(delivered_at=timezone.now(), next_attempt_at=None)
    else:
        retry_at = timezone.now() + timedelta(seconds=backoff(attempts))
        if final or retry_at > delivery.created_at + GIVE_UP_AFTER:
            fields.update(gave_up=True, next_attempt_at=None)
        else:
            fields.update(next_attempt_at=retry_at)
    WebhookDelivery.objects.filter(pk=pk).update(**fields)


def deliver_due() -> int:
    """Every delivery whose time has come (retries, and first attempts whose task was lost)."""
    due = list(
        WebhookDelivery.objects.filter(next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:DUE_BATCH]
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(_deliver_in_thread, due))
    return len(due)


def _deliver_in_thread(pk: int) -> None:
    try:
        deliver(pk)
    finally:
        connections.close_all()
