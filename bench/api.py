"""API benchmark: a script holding only a token drives the studio over HTTP.

    .venv/bin/python bench/api.py

Starts the simulator (2 s latency), a worker cluster and the web server as `make serve` runs it
(gunicorn, DEBUG off), on a fresh SQLite database, with completion callbacks. Setting up is what a
member does on the pages: a token with the generate scope, and a webhook endpoint (a receiver on
loopback in this script). Then, with only the token:

- 20 jobs through `POST /api/v1/jobs`, half with a reference image (base64), each with an
  Idempotency-Key; one create sent again with its key must answer the same job (no second job);
- the 20 `job.succeeded` webhooks are received and their signatures verified;
- the 20 originals are downloaded and checked against the sha256 the API gives;
- 50 concurrent clients: 200 creates, then 1,000 reads of a job; p50 / p95 of each (client-side,
  the whole request).

The figures come last, as one line of name=value pairs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from pipeline import Stack, bench_account, p95  # noqa: E402

JOBS, CLIENTS, CREATES, READS = 20, 50, 200, 1000


class Receiver:
    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.events.append((self.headers["Nanoweb-Signature"], body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/nanoweb"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """As a receiver does it (the README's example)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    signed = f"{fields['t']}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return abs(time.time() - int(fields["t"])) < tolerance and hmac.compare_digest(expected, fields["v1"])


def set_up(receiver: Receiver) -> tuple[str, str, str]:
    """What a member does on the pages: a token, and a webhook endpoint. Returns token, secret, model."""
    from decimal import Decimal

    from django.contrib.auth import get_user_model

    from nanoweb.api.models import EVENTS, ApiToken, WebhookEndpoint
    from nanoweb.credits.models import Budget

    account = bench_account("bench crun", "crun", rate_limit=1000)
    model = account.catalogue.get(model_id="google/nano-banana-2").name
    user, _ = get_user_model().objects.get_or_create(username="bench")
    Budget.objects.update_or_create(user=user, defaults={"amount": Decimal(1_000_000), "period": "none"})
    _, token = ApiToken.issue(user=user, name="bench", scope=ApiToken.Scope.GENERATE)
    endpoint = WebhookEndpoint.objects.create(owner=user, url=receiver.url, events=list(EVENTS))
    return token, endpoint.secret, model


def timed(call) -> tuple[float, requests.Response]:
    began = time.perf_counter()
    response = call()
    return (time.perf_counter() - began) * 1000, response


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanoweb.settings")
    receiver = Receiver()
    env = {"API_RATE_LIMIT": "1000000", "WEBHOOK_RETRY_SECONDS": "5"}
    with Stack(latency=2, callbacks=True, production=True, **env) as stack:
        token, secret, model = set_up(receiver)
        from nanoweb.providers.simulator.render import image as render_image

        api = f"http://127.0.0.1:{stack.web_port}/api/v1"
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        reference = base64.b64encode(render_image("a reference", 96, 64)).decode()

        bodies = [
            {"prompt": f"api bench {n}", "model": model, **({"reference_images": [reference]} if n % 2 else {})}
            for n in range(JOBS)
        ]
        created = []
        for n, body in enumerate(bodies):
            response = session.post(f"{api}/jobs", json=body, headers={"Idempotency-Key": f"bench-{n}"}, timeout=60)
            assert response.status_code == 201, response.text
            created.append(response.json()["jobs"][0]["id"])
        retried = session.post(f"{api}/jobs", json=bodies[0], headers={"Idempotency-Key": "bench-0"}, timeout=60)
        listed = session.get(f"{api}/jobs", params={"view": "mine"}, timeout=60).json()["jobs"]
        retry_new_jobs = len(listed) - JOBS
        assert retried.json()["jobs"][0]["id"] == created[0] and retry_new_jobs == 0

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(receiver.events) < JOBS:
            time.sleep(0.2)
        events = [(json.loads(body), verify(secret, body, header)) for header, body in receiver.events]
        verified = sum(ok and event["type"] == "job.succeeded" for event, ok in events)
        jobs = {event["data"]["id"]: event["data"] for event, ok in events if ok}
        assert set(jobs) == set(created), f"webhooks for {len(jobs)} of {JOBS} jobs"

        originals = 0
        for job_id in created:
            response = session.get(f"{api}/jobs/{job_id}/original", timeout=60)
            originals += hashlib.sha256(response.content).hexdigest() == jobs[job_id]["images"][0]["sha256"]
        with_references = sum(bool(body.get("reference_images")) for body in bodies)

        local = threading.local()

        def client(phase: str) -> requests.Session:
            """A kept-alive connection per client and phase (gunicorn closes one idle for 2 s)."""
            if getattr(local, "phase", None) != phase:
                local.phase, local.session = phase, requests.Session()
                local.session.headers["Authorization"] = f"Bearer {token}"
            return local.session

        def create(n: int) -> float:
            took, response = timed(
                lambda: client("create").post(f"{api}/jobs", json={"prompt": f"load {n}", "model": model})
            )
            assert response.status_code == 201, response.text
            return took

        def read(n: int) -> float:
            took, response = timed(lambda: client("read").get(f"{api}/jobs/{created[n % JOBS]}"))
            assert response.status_code == 200, response.text
            return took

        with ThreadPoolExecutor(CLIENTS) as pool:
            creates = list(pool.map(create, range(CREATES)))
            reads = list(pool.map(read, range(READS)))

    figures = {
        "jobs": len(created), "with_references": with_references, "webhooks_verified": verified,
        "originals_verified": originals, "retry_new_jobs": retry_new_jobs, "clients": CLIENTS,
        "create_p50_ms": round(statistics.median(creates), 1), "create_p95_ms": round(p95(creates), 1),
        "read_p50_ms": round(statistics.median(reads), 1), "read_p95_ms": round(p95(reads), 1),
        "load1": round(os.getloadavg()[0], 1),  # the host's load: the figures mean little on a busy one
    }  # fmt: skip
    print(" ".join(f"{name}={value}" for name, value in figures.items()))


if __name__ == "__main__":
    main()
