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
- one client: 20 reads of a job, 20 creates, one at a time (p50);
- 50 concurrent connections (wrk, Debian's package): creates for 5 s; then, once the cluster has
  finished those jobs, reads of one job for 10 s; p50 / p95 of each.

The figures come last, as one line of name=value pairs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from pipeline import Stack, bench_account  # noqa: E402

JOBS, CLIENTS, SERIAL = 20, 50, 20


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


REPORT = """
wrk.method = os.getenv("WRK_METHOD")
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d p50_ms=%.1f p95_ms=%.1f errors=%d\\n", summary.requests,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
"""


def concurrent(stack: Stack, token: str, path: str, *, seconds: int, body: dict | None = None) -> dict[str, float]:
    """CLIENTS connections at once for `seconds` (wrk: its latencies, not a Python client's)."""
    script = stack.data / "api.lua"
    script.write_text(REPORT)
    body_text = json.dumps(body) if body else ""
    env = {**os.environ, "WRK_TOKEN": token, "WRK_METHOD": "POST" if body else "GET", "WRK_BODY": body_text}
    result = subprocess.run(
        ["wrk", "-t2", f"-c{CLIENTS}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
         f"http://127.0.0.1:{stack.web_port}{path}"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return {key: float(value) for key, value in re.findall(r"(\w+)=([\d.]+)", result.stdout.split("RESULT", 1)[1])}


def wait_until_idle(timeout: float) -> float:
    """Seconds until no job is unfinished."""
    from nanoweb.studio.models import Generation

    began = time.monotonic()
    while time.monotonic() - began < timeout and Generation.objects.filter(status__in=Generation.ACTIVE).exists():
        time.sleep(0.5)
    return round(time.monotonic() - began, 1)


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
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
        assert retried.json()["jobs"][0]["id"] == created[0]

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(receiver.events) < JOBS:
            time.sleep(0.2)
        events = [(json.loads(body), verify(secret, body, header)) for header, body in receiver.events]
        verified = sum(ok and event["type"] == "job.succeeded" for event, ok in events)
        jobs = {event["data"]["id"]: event["data"] for event, ok in events if ok}
        assert set(jobs) == set(created), f"webhooks for {len(jobs)} of {JOBS} jobs"
        # Once every job is done: the list (finished images by default) holds each once, the retry made none.
        listed = session.get(f"{api}/jobs", params={"view": "mine"}, timeout=60).json()["jobs"]
        retry_new_jobs = len(listed) - JOBS
        assert retry_new_jobs == 0

        originals = 0
        for job_id in created:
            response = session.get(f"{api}/jobs/{job_id}/original", timeout=60)
            originals += hashlib.sha256(response.content).hexdigest() == jobs[job_id]["images"][0]["sha256"]
        with_references = sum(bool(body.get("reference_images")) for body in bodies)

        serial_reads = [timed(lambda: session.get(f"{api}/jobs/{created[0]}"))[0] for _ in range(SERIAL)]
        serial_creates = [
            timed(lambda: session.post(f"{api}/jobs", json={"prompt": "one at a time", "model": model}))[0]
            for _ in range(SERIAL)
        ]
        load = concurrent(stack, token, "/api/v1/jobs", seconds=5, body={"prompt": "under load", "model": model})
        settled = wait_until_idle(timeout=180)  # reads measure the read path, not 50 × 5 s of finishing
        reads = concurrent(stack, token, f"/api/v1/jobs/{created[0]}", seconds=10)

    figures = {
        "jobs": len(created), "with_references": with_references, "webhooks_verified": verified,
        "originals_verified": originals, "retry_new_jobs": retry_new_jobs, "clients": CLIENTS,
        "creates": load["requests"], "create_p50_ms": load["p50_ms"], "create_p95_ms": load["p95_ms"],
        "reads": reads["requests"], "read_p50_ms": reads["p50_ms"], "read_p95_ms": reads["p95_ms"],
        "refused": load["errors"] + reads["errors"], "settled_s": settled,
        "serial_create_p50_ms": round(statistics.median(serial_creates), 1),
        "serial_read_p50_ms": round(statistics.median(serial_reads), 1),
        "load1": round(os.getloadavg()[0], 1),  # the host's load: the figures mean little on a busy one
    }  # fmt: skip
    print(" ".join(f"{name}={value}" for name, value in figures.items()))


if __name__ == "__main__":
    main()
