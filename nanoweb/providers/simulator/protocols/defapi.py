"""defapi as its API documentation describes it: {code: 0} envelopes, callbacks, data URIs."""

from __future__ import annotations

import base64
import re
import time
import uuid

from nanoweb.providers.simulator.server import (
    Job,
    Request,
    Response,
    Simulator,
    fetch_references,
    injected_fault,
    json_response,
    without_missing,
)  # fmt: skip

PREFIX = "/defapi"
MODELS = {"google/gempix2", "google/gemini-2.5-flash-image"}
MESSAGES = {400: "failed", 401: "Invalid API key", 404: "task not found", 429: "too many requests",
            500: "internal server error"}  # fmt: skip


def error(code: str, request: Request, detail: str = "") -> Response:
    status = int(code)
    body = {"code": 1, "message": MESSAGES.get(status, "failed")}
    if detail:
        body["detail"] = detail
    return json_response(status, body)


def generate(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("401", request)
    if fault := injected_fault(sim, request, "create", error):
        return fault
    body = request.json()
    if not isinstance(body, dict):
        return error("400", request, "invalid JSON body")
    if body.get("model") not in MODELS:
        return error("400", request, "model is required")
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        return error("400", request, "prompt is required")
    images = body.get("images") or []
    if not isinstance(images, list) or len(images) > 4:
        return error("400", request, "images: at most 4 reference URLs")
    references, failure = fetch_references(images)
    if failure:
        return error("400", request, failure)
    job = sim.new_job(
        "defapi", request, prompt=body["prompt"], width=1024, height=1024, image_format="png",
        callback_url=body.get("callback_url", ""), params={**body, "reference_sha256": references}, job_id="ta" + uuid.uuid4().hex[2:],
    )  # fmt: skip
    return json_response(200, {"code": 0, "message": "ok", "data": {"task_id": job.id}})


def task_data(job: Job) -> dict:
    status = {"queued": "submitted", "running": "in_progress", "succeeded": "success", "failed": "failed"}[job.state]
    result = None
    if job.state == "succeeded":
        image = job.result_urls[0]
        if job.directive("result_form") == "datauri":
            image = "data:image/png;base64," + base64.b64encode(job.result_bytes).decode()
        result = [{"image": image}]
    return without_missing(job, {
        "task_id": job.id,
        "status": status,
        "result": result,
        "status_reason": {"message": job.error or None},
        "consumed": "0.500000" if job.state == "succeeded" else "0.000000",
    })  # fmt: skip


def query(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return json_response(401, {"code": 401, "message": "Invalid API key"})
    job = sim.jobs.get(request.query.get("task_id", ""))
    if job is None or job.protocol != "defapi":
        return error("404", request)
    # Observed in the wild: a fresh task is "not found" for a moment.
    if time.time() - job.created < float(job.directive("notfound") or 0):
        return error("404", request)
    job.reads.append(time.time())
    if fault := injected_fault(sim, request, "status", error, job):
        return fault
    return json_response(200, {"code": 0, "message": "ok", "data": task_data(job)})


def complete(sim: Simulator, job: Job) -> None:
    data = task_data(job)
    sim.post_callback(
        job.callback_url,
        {k: data[k] for k in ("result", "status", "task_id", "consumed", "status_reason") if k in data},
    )


def register(sim: Simulator) -> None:
    sim.route("POST", PREFIX + "/api/image/gen", generate)
    sim.route("GET", PREFIX + "/api/task/query", query)
    sim.completers["defapi"] = complete
