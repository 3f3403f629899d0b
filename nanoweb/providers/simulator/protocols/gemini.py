"""Google's Gemini API, as Google documents it: synchronous generateContent with inline images."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from nanoweb.providers.simulator import render
from nanoweb.providers.simulator.server import (
    DIRECTIVE,
    Request,
    Response,
    Simulator,
    account_fault,
    injected_fault,
    json_response,
    size_for,
)

PREFIX = "/gemini/v1beta"
RATIOS_31 = {"1:1", "1:4", "1:8", "2:3", "3:2", "3:4", "4:1", "4:3", "4:5", "5:4", "8:1", "9:16", "16:9", "21:9"}
RATIOS_25 = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
# The -preview ids were shut down on 2026-06-25: they answer 404 like any unknown id.
MODELS = {
    "gemini-nano-banana-2.1": (RATIOS_31, {"1K", "2K", "4K"}),
    "gemini-3.1-flash-image": (RATIOS_31, {"512", "1K", "2K", "4K"}),
    "gemini-3-pro-image": (RATIOS_25, {"1K", "2K", "4K"}),
    "gemini-3.1-flash-lite-image": (RATIOS_25, {"1K"}),
    "gemini-2.5-flash-image": (RATIOS_25, None),
}
# What `GET /models` lists besides the image models: a key sees text models too.
OTHER_MODELS = ("gemini-3-flash", "gemini-embedding-001")
STATUSES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}  # fmt: skip


def error(code: str, request: Request, message: str = "") -> Response:
    status = int(code)
    message = message or {429: "Resource has been exhausted (e.g. check quota).", 503: "The model is overloaded."}.get(
        status, STATUSES.get(status, "error").replace("_", " ").capitalize()
    )
    return json_response(
        status, {"error": {"code": status, "message": message, "status": STATUSES.get(status, "UNKNOWN")}}
    )


def generate_content(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("400", request, "API key not valid. Please pass a valid API key.")
    model = match["model"]
    if model not in MODELS:
        return error(
            "404", request,
            f"models/{model} is not found for API version v1beta, or is not supported for generateContent. "
            "Call ListModels to see the list of available models and their supported methods.",
        )  # fmt: skip
    if fault := injected_fault(sim, request, "create", error):
        return fault
    body = request.json()
    parts: list[Any] = []
    if isinstance(body, dict) and isinstance(body.get("contents"), list) and body["contents"]:
        parts = body["contents"][0].get("parts") or [] if isinstance(body["contents"][0], dict) else []
    text = " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    if not text.strip():
        return error("400", request, "contents must contain a text part")
    references = []
    for part in parts:
        inline = part.get("inline_data") or part.get("inlineData") if isinstance(part, dict) else None
        if inline is not None:
            try:
                references.append(hashlib.sha256(base64.b64decode(inline["data"], validate=True)).hexdigest())
            except (KeyError, TypeError, ValueError):
                return error("400", request, "inline_data.data must be base64")
    ratios, sizes = MODELS[model]
    image_config = (body.get("generationConfig") or {}).get("imageConfig") or {}
    ratio, size = image_config.get("aspectRatio", "1:1"), image_config.get("imageSize", "1K")
    if ratio not in ratios:
        return error("400", request, f"aspectRatio {ratio} is not supported by {model}")
    if sizes is not None and size not in sizes:
        return error("400", request, f"imageSize {size} is not supported")
    job = sim.new_job(
        "gemini", request, prompt=text, width=0, height=0, image_format="png",
        params={**body, "reference_sha256": references}, scheduled=False,
    )  # fmt: skip
    time.sleep(job.latency)  # the call itself takes as long as the generation
    job.completed, feedback = time.time(), job.directive("block")
    if feedback is not None:
        job.state = "failed"
        return json_response(200, {"promptFeedback": {"blockReason": feedback or "SAFETY"}})
    finish = job.directive("finish")
    if finish is not None or job.directive("fail") is not None:
        job.state = "failed"
        candidate = {"content": {"parts": [{"text": "I can't make that image."}], "role": "model"},
                     "finishReason": finish or "NO_IMAGE",
                     "finishMessage": f"Unable to show the generated image ({finish or 'NO_IMAGE'})."}  # fmt: skip
        return json_response(200, {"candidates": [candidate]})
    width, height = size_for(ratio, size if sizes else "1K")
    job.result_bytes, job.state = render.image(text, width, height, "png"), "succeeded"
    image_part = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(job.result_bytes).decode()}}
    parts = [{"text": "Here is your image."}, image_part]
    if model.startswith("gemini-3"):  # Gemini 3 thinks in images first: an interim draft marked as a thought
        draft = render.image("draft", 64, 64, "png")
        parts.insert(0, {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(draft).decode()},
                         "thought": True})  # fmt: skip
    return json_response(200, {
        "candidates": [{"content": {"parts": parts, "role": "model"},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": len(text.split()), "candidatesTokenCount": 1290},
        "modelVersion": model,
    })  # fmt: skip


def list_models(sim: Simulator, request: Request, match: re.Match) -> Response:
    """`GET /models`, paged by `pageSize` and `pageToken` (an offset here)."""
    if not request.key_is(sim.api_key):
        return error("400", request, "API key not valid. Please pass a valid API key.")
    if fault := account_fault(request, error):
        return fault
    names = [*MODELS, *OTHER_MODELS]
    size = max(1, min(1000, int(request.query.get("pageSize") or 50)))
    start = int(request.query.get("pageToken") or 0)
    page = [
        {"name": f"models/{name}", "displayName": name.replace("-", " ").title(), "version": "001",
         "supportedGenerationMethods": ["generateContent", "countTokens", "batchGenerateContent"]}
        for name in names[start:start + size]
    ]  # fmt: skip
    answer: dict[str, Any] = {"models": page}
    if start + size < len(names):
        answer["nextPageToken"] = str(start + size)
    return json_response(200, answer)


# --- the Batch API: requests held until the batch's time has come, then all answered at once ---


@dataclass
class Batch:
    name: str
    model: str
    requests: list[dict[str, Any]]
    created: float
    done_at: float
    state: str = "BATCH_STATE_PENDING"
    responses: list[dict[str, Any]] | None = None


def batches_of(sim: Simulator) -> dict[str, Batch]:
    return sim.__dict__.setdefault("gemini_batches", {})


def image_answer(model: str, body: Any) -> dict[str, Any]:
    """One request's GenerateContentResponse, or {"error": ...} for a request it refuses."""
    parts: list[Any] = []
    if isinstance(body, dict) and isinstance(body.get("contents"), list) and body["contents"]:
        parts = body["contents"][0].get("parts") or [] if isinstance(body["contents"][0], dict) else []
    text = " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    ratios, sizes = MODELS[model]
    image_config = (body.get("generationConfig") or {}).get("imageConfig") or {} if isinstance(body, dict) else {}
    ratio, size = image_config.get("aspectRatio", "1:1"), image_config.get("imageSize", "1K")
    if not text.strip() or ratio not in ratios or (sizes is not None and size not in sizes):
        return {"error": {"code": 400, "message": f"request not valid for {model}", "status": "INVALID_ARGUMENT"}}
    found = dict(DIRECTIVE.findall(text))
    if "block" in found:
        return {"response": {"promptFeedback": {"blockReason": found["block"] or "SAFETY"}}}
    if "fail" in found:
        return {"response": {"candidates": [{"content": {"parts": [{"text": "No."}]}, "finishReason": "NO_IMAGE"}]}}
    width, height = size_for(ratio, size if sizes else "1K")
    data = render.image(DIRECTIVE.sub("", text).strip(), width, height, "png")
    image_part = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(data).decode()}}
    return {"response": {"candidates": [{"content": {"parts": [image_part], "role": "model"}, "finishReason": "STOP"}],
                         "modelVersion": model}}  # fmt: skip


def batch_operation(batch: Batch) -> dict[str, Any]:
    if batch.state == "BATCH_STATE_PENDING" and time.time() >= batch.done_at:
        batch.responses = [
            {**image_answer(batch.model, item.get("request")), "metadata": item.get("metadata") or {}}
            for item in batch.requests
        ]
        batch.state = "BATCH_STATE_SUCCEEDED"
    metadata = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                "model": f"models/{batch.model}", "name": batch.name, "state": batch.state,
                "batchStats": {"requestCount": str(len(batch.requests))}}  # fmt: skip
    operation: dict[str, Any] = {"name": batch.name, "metadata": metadata}
    if batch.state != "BATCH_STATE_PENDING":
        operation["done"] = True
    if batch.responses is not None:
        operation["response"] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
            "inlinedResponses": {"inlinedResponses": batch.responses},
        }
    return operation


def batch_generate_content(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("400", request, "API key not valid. Please pass a valid API key.")
    model = match["model"]
    if model not in MODELS:
        return error("404", request, f"models/{model} is not found for API version v1beta.")
    body = request.json()
    try:
        requests = body["batch"]["input_config"]["requests"]["requests"]
        assert isinstance(requests, list) and requests and all(isinstance(r, dict) for r in requests)
    except (KeyError, TypeError, AssertionError):
        return error("400", request, "batch.input_config.requests.requests must list the requests")
    now = time.time()
    name = f"batches/{secrets.token_hex(10)}"
    # A vendor batch takes a while: here twice a synchronous call's latency.
    batches_of(sim)[name] = Batch(name, model, requests, now, now + sim.latency * 2)
    return json_response(200, batch_operation(batches_of(sim)[name]))


def get_batch(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("400", request, "API key not valid. Please pass a valid API key.")
    batch = batches_of(sim).get(f"batches/{match['id']}")
    if batch is None:
        return error("404", request, "Requested entity was not found.")
    return json_response(200, batch_operation(batch))


def cancel_batch(sim: Simulator, request: Request, match: re.Match) -> Response:
    if not request.key_is(sim.api_key):
        return error("400", request, "API key not valid. Please pass a valid API key.")
    batch = batches_of(sim).get(f"batches/{match['id']}")
    if batch is None:
        return error("404", request, "Requested entity was not found.")
    if batch.state == "BATCH_STATE_PENDING":
        batch.state = "BATCH_STATE_CANCELLED"
    return json_response(200, {})


def register(sim: Simulator) -> None:
    sim.route("POST", PREFIX + r"/models/(?P<model>[\w.-]+):batchGenerateContent", batch_generate_content)
    sim.route("GET", PREFIX + r"/batches/(?P<id>\w+)", get_batch)
    sim.route("POST", PREFIX + r"/batches/(?P<id>\w+):cancel", cancel_batch)
    sim.route("POST", PREFIX + r"/models/(?P<model>[\w.-]+):generateContent", generate_content)
    sim.route("GET", PREFIX + r"/models", list_models)
