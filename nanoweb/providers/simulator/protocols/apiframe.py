"""apiframe as its API documentation describes it: 202 submit, idempotency, signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from nanoweb.providers.simulator.server import (
    Job,
    Request,
    Response,
    Simulator,
    account_fault,
    fetch_references,
    injected_fault,
    json_response,
    size_for,
    without_missing,
)  # fmt: skip

PREFIX = "/apiframe"
MODELS = {"nano-banana-2", "nano-banana"}
RESOLUTIONS = {"512px", "1K", "2K", "4K"}
FORMATS = {"jpg", "png", "webp"}
COST = {"512px": 4, "1K": 6, "2K": 9, "4K": 14}
MESSAGES = {400: "Bad request", 401: "Invalid API key", 402: "Insufficient credits", 404: "Job not found",
            429: "Too many requests", 500: "Internal error", 503: "Service unavailable"}  # fmt: skip


def error(code: str, request: Request, message: str = "") -> Response:
    status = int(code)
    return json_response(
        status, {"error": MESSAGES.get(status, "error"), "message": message or MESSAGES.get(status, "")}
    )


def generate(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("401", request)
    if fault := injected_fault(sim, request, "create", error):
        return fault
    idempotency_key = request.headers.get("idempotency-key", "")
    if idempotency_key and (earlier := sim.idempotency.get(f"{request.api_key}:{idempotency_key}")):
        return json_response(202, {"jobId": earlier.id, "status": _status(earlier)})
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        return error("400", request, "prompt is required")
    if body.get("model", "nano-banana-2") not in MODELS:
        return error("400", request, f"model must be one of {sorted(MODELS)}")
    params = body.get("nanoBananaParams") or {}
    if not isinstance(params, dict):
        return error("400", request, "nanoBananaParams must be an object")
    resolution, output_format = params.get("resolution", "1K"), params.get("output_format", "jpg")
    if resolution not in RESOLUTIONS or output_format not in FORMATS:
        return error("400", request, "unsupported resolution or output_format")
    if "image_input" in params and not isinstance(params["image_input"], str):
        return error("400", request, "image_input must be one URL")
    references, failure = fetch_references([params["image_input"]] if "image_input" in params else [])
    if failure:
        return error("400", request, failure)
    width, height = size_for("1:1", resolution)
    job = sim.new_job(
        "apiframe", request, prompt=body["prompt"], width=width, height=height, image_format=output_format,
        callback_url=body.get("webhookUrl") or body.get("webhook_url") or "",
        params={**body, "api_key": request.api_key, "cost": COST[resolution], "reference_sha256": references},
    )  # fmt: skip
    if idempotency_key:
        sim.idempotency[f"{request.api_key}:{idempotency_key}"] = job
    return json_response(202, {"jobId": job.id, "status": "QUEUED"})


def _status(job: Job) -> str:
    return {"queued": "QUEUED", "running": "PROCESSING", "succeeded": "COMPLETED", "failed": "FAILED"}[job.state]


def job_payload(job: Job) -> dict:
    result = None
    if job.state == "succeeded":
        # The vendor's documents disagree on the shape; the simulator speaks both.
        result = job.result_urls[0] if job.directive("result_shape") == "url" else {"images": job.result_urls}
    return without_missing(job, {
        "id": job.id,
        "status": _status(job),
        "progress": job.progress,
        "result": result,
        "error": job.error or None,
        "creditCost": job.params["cost"] if job.state == "succeeded" else 0,
        "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(job.created)),
    })  # fmt: skip


def get_job(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("401", request)
    job = sim.jobs.get(match["id"])
    if job is None or job.protocol != "apiframe":
        return error("404", request)
    job.reads.append(time.time())
    if fault := injected_fault(sim, request, "status", error, job):
        return fault
    return json_response(200, job_payload(job))


def me(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("401", request)
    if fault := account_fault(request, error):
        return fault
    spent = sum(j.params["cost"] for j in sim.jobs.values() if j.protocol == "apiframe" and j.state == "succeeded")
    return json_response(200, {"team": {"credits": 5000 - spent, "maxConcurrentJobs": 10}})


def signature(api_key: str, body: bytes) -> str:
    return hmac.new(hashlib.sha256(api_key.encode()).digest(), body, hashlib.sha256).hexdigest()


def complete(sim: Simulator, job: Job) -> None:
    payload = {"event": "completed" if job.state == "succeeded" else "failed", "jobId": job.id, **job_payload(job)}
    sim.post_callback(
        job.callback_url, payload, lambda body: {"X-Webhook-Signature": signature(job.params["api_key"], body)}
    )


def register(sim: Simulator) -> None:
    sim.route("POST", PREFIX + "/v2/images/generate", generate)
    sim.route("GET", PREFIX + r"/v2/jobs/(?P<id>[\w-]+)", get_job)
    sim.route("GET", PREFIX + "/v2/me", me)
    sim.completers["apiframe"] = complete
