"""crun.ai as its API documentation describes it: an envelope {code, message, data} on every answer."""

from __future__ import annotations

import re
import time
from typing import Any

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

PREFIX = "/crun"
NB2_RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "1:4", "4:1", "1:8", "8:1", "21:9"}
NB2_RATIOS |= {"auto"}
NB_RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
MODELS = {
    # model: (aspect ratios, resolutions or None when fixed at 1K, output formats or None when ignored, references)
    "google/nano-banana-2": (NB2_RATIOS, {"1K", "2K", "4K"}, {"png", "jpg"}, 14),
    "google/nano-banana-2-v2": (NB2_RATIOS, {"1K", "2K", "4K"}, None, 14),
    "google/nano-banana": (NB_RATIOS, None, {"png", "jpeg"}, 3),
    "google/nano-banana-v2": (NB_RATIOS, None, None, 3),
}
CREDITS = {"1K": 6, "2K": 9, "4K": 14}
MESSAGES = {
    401: "Unauthorized: invalid or missing API key", 402: "Insufficient credits", 404: "Not found",
    422: "Validation error", 429: "Rate limited", 455: "Service under maintenance", 500: "Server error",
    501: "Generation failed", 505: "Feature disabled",
}  # fmt: skip


def envelope(code: int, message: str, data: Any = None) -> Response:
    return json_response(code, {"code": code, "message": message, "data": data})


def error(code: str, request: Request) -> Response:
    return envelope(int(code), MESSAGES.get(int(code), "error"))


def create_task(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("401", request)
    if fault := injected_fault(sim, request, "create", error):
        return fault
    body = request.json()
    if not isinstance(body, dict):
        return envelope(422, "request body must be a JSON object")
    model = body.get("model")
    if model not in MODELS:
        return envelope(422, f"model is required and must be one of {sorted(MODELS)}")
    ratios, resolutions, formats, max_references = MODELS[model]
    task_input = body.get("input")
    if not isinstance(task_input, dict):
        return envelope(422, "input is required")
    prompt = task_input.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return envelope(422, "input.prompt is required")
    if len(prompt) > 20000:
        return envelope(422, "input.prompt must be at most 20000 characters")
    ratio = task_input.get("aspect_ratio", "auto" if "auto" in ratios else "1:1")
    if ratio not in ratios:
        return envelope(422, f"input.aspect_ratio {ratio!r} is not supported")
    resolution = task_input.get("resolution", "1K")
    if resolutions is not None and resolution not in resolutions:
        return envelope(422, f"input.resolution {resolution!r} is not supported")
    output_format = task_input.get("output_format", "png")
    if formats is not None and output_format not in formats:
        return envelope(422, f"input.output_format {output_format!r} is not supported")
    urls = task_input.get("img_urls", [])
    if not isinstance(urls, list) or len(urls) > max_references or not all(isinstance(u, str) for u in urls):
        return envelope(422, f"input.img_urls must be a list of at most {max_references} URLs")
    references, failure = fetch_references(urls)
    if failure:
        return envelope(422, failure)
    resolution = resolution if resolutions else "1K"
    width, height = size_for("1:1" if ratio == "auto" else ratio, resolution)
    job = sim.new_job(
        "crun", request, prompt=prompt, width=width, height=height,
        image_format=output_format if formats else "png", callback_url=body.get("callback_url", ""),
        params={**body, "credits": CREDITS[resolution], "reference_sha256": references},
    )  # fmt: skip
    return envelope(200, "success", {"task_id": job.id})


def task_data(job: Job) -> dict[str, Any]:
    status = {"queued": "pending", "running": "running", "succeeded": "success", "failed": "failed"}[job.state]
    result: dict[str, Any] | None = None
    if job.state == "succeeded":
        result = {"media_urls": job.result_urls}
    elif job.state == "failed":
        result = {"code": 501, "message": job.error}
    done = job.state in ("succeeded", "failed")
    param = {k: v for k, v in job.params.items() if k not in ("credits", "reference_sha256")}
    return without_missing(job, {
        "task_id": job.id,
        "status": status,
        "param": param,
        "result": result,
        "credits": job.params["credits"] if job.state == "succeeded" else (0 if done else None),
        "create_at": int(job.created),
        "complete_at": int(job.completed) if job.completed else None,
        "duration_s": round(job.completed - job.created, 2) if job.completed else None,
    })  # fmt: skip


def task_info(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("401", request)
    job = sim.jobs.get(request.query.get("task_id", ""))
    if job is None or job.protocol != "crun":
        return envelope(404, "task not found")
    job.reads.append(time.time())
    if fault := injected_fault(sim, request, "status", error, job):
        return fault
    return envelope(200, "success", task_data(job))


def balance(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("401", request)
    if fault := account_fault(request, error):
        return fault
    spent = sum(j.params["credits"] for j in sim.jobs.values() if j.protocol == "crun" and j.state == "succeeded")
    return envelope(200, "success", {"balance": 10000 - spent, "updated_at": int(time.time())})


def complete(sim: Simulator, job: Job) -> None:
    sim.post_callback(job.callback_url, task_data(job))


def register(sim: Simulator) -> None:
    sim.route("POST", PREFIX + "/api/v1/client/job/CreateTask", create_task)
    sim.route("GET", PREFIX + "/api/v1/client/job/TaskInfo", task_info)
    sim.route("GET", PREFIX + "/api/v1/client/account/balance", balance)
    sim.completers["crun"] = complete
