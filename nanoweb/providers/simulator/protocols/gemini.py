"""Google's Gemini API (providers.md §5): synchronous generateContent with inline images."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from typing import Any

from nanoweb.providers.simulator import render
from nanoweb.providers.simulator.server import Request, Response, Simulator, injected_fault, json_response, size_for

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


def register(sim: Simulator) -> None:
    sim.route("POST", PREFIX + r"/models/(?P<model>[\w.-]+):generateContent", generate_content)
    sim.route("GET", PREFIX + r"/models", list_models)
