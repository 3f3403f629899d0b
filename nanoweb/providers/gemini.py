"""Google's Gemini API directly: one synchronous generateContent call per image."""

from __future__ import annotations

import base64
import binascii
from datetime import date
from typing import Any

from nanoweb.providers.base import (
    Adapter,
    ErrorKind,
    GenerationRequest,
    ModelSpec,
    ProviderError,
    ProviderStatus,
    ResultImage,
    State,
    Submitted,
    by_http_status,
    json_body,
    retry_after,
)  # fmt: skip

RATIOS_31 = ("1:1", "1:4", "1:8", "2:3", "3:2", "3:4", "4:1", "4:3", "4:5", "5:4", "8:1", "9:16", "16:9", "21:9")
RATIOS_25 = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
# `error.status` → taxonomy; a bad key arrives as INVALID_ARGUMENT and is recognised by its message.
STATUSES = {
    "INVALID_ARGUMENT": (ErrorKind.INVALID_INPUT, False), "FAILED_PRECONDITION": (ErrorKind.INVALID_INPUT, False),
    "UNAUTHENTICATED": (ErrorKind.AUTH, False), "PERMISSION_DENIED": (ErrorKind.AUTH, False),
    "NOT_FOUND": (ErrorKind.NOT_FOUND, False), "RESOURCE_EXHAUSTED": (ErrorKind.RATE_LIMITED, True),
    "INTERNAL": (ErrorKind.UNAVAILABLE, True), "UNAVAILABLE": (ErrorKind.UNAVAILABLE, True),
    "DEADLINE_EXCEEDED": (ErrorKind.UNAVAILABLE, True),
}  # fmt: skip
# finishReason values that mean the image was withheld for safety or policy; NO_IMAGE, or STOP
# with no image part, means the model chose not to draw one.
BLOCKED_FINISH = {
    "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER",
}  # fmt: skip
CALL_TIMEOUT = 180  # a synchronous generation takes 10-40 s, sometimes much more


class GeminiAdapter(Adapter):
    kind = "gemini"
    label = "Google Gemini API"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    synchronous = True
    inline_references = True
    # Calls in flight at once: each holds a connection for 10-60 s; Google limits requests per minute.
    max_in_flight = 16
    # A request stops at about 20 MB; base64 makes 14 MB of images 18.7 MB.
    max_inline_bytes = 14 * 1024 * 1024
    # Output is PNG only (nothing to send). Google renames and retires ids: the catalogue is where they change.
    default_models = (
        ModelSpec(
            "gemini-3.1-flash-image", "Nano Banana 2", aspect_ratios=RATIOS_31,
            resolutions=("512", "1K", "2K", "4K"), output_formats=("png",), max_references=14, google_search=True,
        ),
        ModelSpec(
            "gemini-2.5-flash-image", "Nano Banana", family="Nano Banana", aspect_ratios=RATIOS_25,
            output_formats=("png",), max_references=3,
            deprecated=True, replacement="Nano Banana 2",
            deprecation_note="Google has announced its shutdown (earliest October 2026, postponed since).",
        ),
        ModelSpec(
            "gemini-3.1-flash-image-preview", "Nano Banana 2 (preview)", aspect_ratios=RATIOS_31,
            resolutions=("512", "1K", "2K", "4K"), max_references=14, google_search=True, enabled=False,
            deprecated=True, replacement="Nano Banana 2", shutdown_on=date(2026, 6, 25),
            deprecation_note="Google shut the preview id down; gemini-3.1-flash-image replaces it.",
        ),
    )  # fmt: skip

    def create(self, request: GenerationRequest) -> Submitted:
        image_config: dict[str, str] = {}
        if request.aspect_ratio:
            image_config["aspectRatio"] = request.aspect_ratio
        if request.resolution:
            image_config["imageSize"] = request.resolution
        parts: list[dict[str, Any]] = [{"text": request.prompt}]
        parts += [
            {"inline_data": {"mime_type": image.mime_type, "data": image.base64}} for image in request.reference_images
        ]
        body: dict[str, Any] = {
            "contents": [{"role": "user", "parts": parts}],
            "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": image_config},
        }
        if request.google_search:
            body["tools"] = [{"google_search": {}}]
        response = self.call(
            "POST", f"/models/{request.model}:generateContent", json=body,
            headers={"x-goog-api-key": self.api_key}, timeout=CALL_TIMEOUT, max_bytes=80 * 1024 * 1024,
        )  # fmt: skip
        try:
            answer = json_body(response)
        except ProviderError as error:
            error.ambiguous = False  # a synchronous call that was answered leaves nothing running
            raise
        if response.status_code != 200:
            raise _error(response.status_code, answer, retry_after(response))
        return Submitted(status=parse_answer(answer))

    def check_account(self) -> bool:
        response = self.call("GET", "/models", headers={"x-goog-api-key": self.api_key}, params={"pageSize": 1})
        if response.status_code != 200:
            raise _error(response.status_code, json_body(response), retry_after(response))
        return True


def parse_answer(answer: dict[str, Any]) -> ProviderStatus:
    """Images may sit in any part of any candidate; HTTP 200 can still be a refusal. Gemini 3
    models may send interim images in parts marked `thought`: only the final ones count."""
    feedback = answer.get("promptFeedback") or {}
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        message = feedback.get("blockReasonMessage") or ""
        detail = f"prompt blocked: {feedback['blockReason']} {message}".strip()
        return ProviderStatus(State.FAILED, error=ProviderError(ErrorKind.CONTENT_BLOCKED, detail))
    images, reasons, messages = [], [], []
    for candidate in answer.get("candidates") or []:
        if not isinstance(candidate, dict):
            continue
        reasons.append(str(candidate.get("finishReason", "")))
        if candidate.get("finishMessage"):
            messages.append(str(candidate["finishMessage"]))
        for part in (candidate.get("content") or {}).get("parts") or []:
            if not isinstance(part, dict) or part.get("thought"):
                continue
            inline = part.get("inlineData") or part.get("inline_data")
            if isinstance(inline, dict) and isinstance(inline.get("data"), str):
                try:
                    images.append(ResultImage(data=base64.b64decode(inline["data"], validate=True)))
                except binascii.Error as exc:
                    raise ProviderError(ErrorKind.BAD_RESULT, f"bad base64 image: {exc}") from exc
    if images:
        return ProviderStatus(State.SUCCEEDED, 100, tuple(images))
    detail = f"finishReason {', '.join(reasons) or 'none'}" + "".join(f": {m}" for m in messages)
    kind = ErrorKind.CONTENT_BLOCKED if BLOCKED_FINISH & set(reasons) else ErrorKind.NO_IMAGE
    return ProviderStatus(State.FAILED, error=ProviderError(kind, detail))


def _error(status_code: int, answer: dict[str, Any], wait: float | None) -> ProviderError:
    error = answer.get("error")
    if not isinstance(error, dict):
        error = {}
    status, message = str(error.get("status", "")), str(error.get("message", ""))
    if "API key" in message and status in ("INVALID_ARGUMENT", "PERMISSION_DENIED", "UNAUTHENTICATED"):
        kind, retryable = ErrorKind.AUTH, False
    else:
        kind, retryable = STATUSES.get(status) or by_http_status(status_code, {})
    return ProviderError(kind, f"HTTP {status_code} {status}: {message}", retryable=retryable, retry_after=wait)
