"""nanophoto.ai as its API documentation describes it: Bearer auth, generationId polling."""

from __future__ import annotations

import re
import secrets
import time

from nanoweb.providers.simulator.server import (
    Job,
    Request,
    Response,
    Simulator,
    fetch_references,
    injected_fault,
    json_response,
    size_for,
    without_missing,
)  # fmt: skip

PREFIX = "/nanophoto"
RATIOS = {"16:9", "9:16", "4:3", "3:4"}
QUALITIES = {"1K", "2K", "4K"}
ERRORS = {
    "LOGIN_REQUIRED": (401, "Authentication required"),
    "FORBIDDEN": (403, "Access denied (not your generation)"),
    "NOT_FOUND": (404, "Generation ID not found"),
    "INSUFFICIENT_CREDITS": (402, "Not enough credits"),
    "API_KEY_RATE_LIMIT_EXCEEDED": (
        429,
        "API key rate limit exceeded. Default: 100 requests/hour. Contact support for higher limits.",
    ),
    "INVALID_PROMPT": (400, "Prompt is missing or empty"),
    "MISSING_INPUT_IMAGE": (400, "Edit mode requires input images"),
    "TOO_MANY_IMAGES": (400, "More than 14 input images"),
    "IMAGE_URLS_REQUIRED": (400, "API calls require inputImageUrls for edit mode"),
    "CREDIT_RESERVATION_FAILED": (500, "Failed to reserve credits"),
    "GENERATION_FAILED": (500, "Image generation failed"),
}


def error(code: str, request: Request) -> Response:
    status, message = ERRORS[code]
    return json_response(status, {"success": False, "errorCode": code, "error": message})


def generate(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("LOGIN_REQUIRED", request)
    if fault := injected_fault(sim, request, "create", error):
        return fault
    body = request.json()
    if not isinstance(body, dict):
        return error("INVALID_PROMPT", request)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return error("INVALID_PROMPT", request)
    mode = body.get("mode")
    if mode not in ("generate", "edit"):
        return json_response(
            400, {"success": False, "errorCode": "INVALID_MODE", "error": "mode must be generate or edit"}
        )
    ratio, quality = body.get("aspectRatio", "16:9"), body.get("imageQuality", "1K")
    if ratio not in RATIOS or quality not in QUALITIES:
        return json_response(
            400, {"success": False, "errorCode": "INVALID_PARAMS", "error": "bad aspectRatio or imageQuality"}
        )
    if "inputImages" in body:
        return error("IMAGE_URLS_REQUIRED", request)
    urls = body.get("inputImageUrls") or []
    if mode == "edit" and not urls:
        return error("MISSING_INPUT_IMAGE", request)
    if len(urls) > 14:
        return error("TOO_MANY_IMAGES", request)
    references, failure = fetch_references(urls)
    if failure:
        return json_response(400, {"success": False, "errorCode": "INVALID_INPUT_IMAGE", "error": failure})
    width, height = size_for(ratio, quality)
    job = sim.new_job("nanophoto", request, prompt=prompt, width=width, height=height, image_format="png",
                      params={**body, "reference_sha256": references})  # fmt: skip
    job.params["owner"] = request.api_key
    return json_response(
        200, {"success": True, "generationId": job.id, "taskId": "task-" + secrets.token_hex(4), "status": "pending"}
    )


def status_payload(job: Job) -> dict:
    status = {"queued": "pending", "running": "generating", "succeeded": "completed", "failed": "failed"}[job.state]
    payload = {"success": job.state != "failed", "status": status, "generationId": job.id, "progress": job.progress}
    if job.state == "succeeded":
        payload["imageUrl"] = job.result_urls[0]
    if job.state == "failed":
        payload["error"] = job.error or "Generation failed"
    return without_missing(job, payload)


def check_status(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("LOGIN_REQUIRED", request)
    body = request.json()
    job = sim.jobs.get(body.get("generationId", "") if isinstance(body, dict) else "")
    if job is None or job.protocol != "nanophoto":
        return error("NOT_FOUND", request)
    if job.params["owner"].split("+")[0] != request.api_key.split("+")[0]:
        return error("FORBIDDEN", request)
    job.reads.append(time.time())
    if fault := injected_fault(sim, request, "status", error, job):
        return fault
    return json_response(200, status_payload(job))


def register(sim: Simulator) -> None:
    sim.route("POST", PREFIX + "/api/nano-banana-2/generate", generate)
    sim.route("POST", PREFIX + "/api/nano-banana-2/check-status", check_status)
    sim.limit_answers["nanophoto"] = lambda request: error("API_KEY_RATE_LIMIT_EXCEEDED", request)
