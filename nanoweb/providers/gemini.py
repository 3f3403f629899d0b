"""Google's Gemini API directly: one synchronous generateContent call per image."""

from __future__ import annotations

import base64
import binascii
import threading
import time
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
    VendorModel,
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
    lists_models = True
    may_store_requests = True
    vendor_batches = True
    # Output is PNG only (nothing to send). Google renames and retires ids: the catalogue is where they change.
    default_models = (
        ModelSpec(
            "gemini-nano-banana-2.1", "Nano Banana 2.1", family="Nano Banana 2.1", aspect_ratios=RATIOS_31,
            resolutions=("1K", "2K", "4K"), output_formats=("png",), max_references=14, google_search=True,
            price_confirmed=False,
        ),
        ModelSpec(
            "gemini-3.1-flash-image", "Nano Banana 2", aspect_ratios=RATIOS_31,
            resolutions=("512", "1K", "2K", "4K"), output_formats=("png",), max_references=14, google_search=True,
            deprecated=True, replacement="Nano Banana 2.1",
            deprecation_note="Google deprecated it for Nano Banana 2.1 on 2026-10-06 (still served, no shutdown date).",
        ),
        ModelSpec(
            "gemini-3-pro-image", "Nano Banana Pro", family="Nano Banana Pro", aspect_ratios=RATIOS_25,
            resolutions=("1K", "2K", "4K"), output_formats=("png",), max_references=14, google_search=True,
        ),
        ModelSpec(
            "gemini-3.1-flash-lite-image", "Nano Banana 2 Lite", family="Nano Banana 2 Lite",
            aspect_ratios=RATIOS_25, resolutions=("1K",), output_formats=("png",), max_references=3,
        ),
        ModelSpec(
            "gemini-2.5-flash-image", "Nano Banana", family="Nano Banana", aspect_ratios=RATIOS_25,
            output_formats=("png",), max_references=3,
            deprecated=True, replacement="Nano Banana 2.1",
            deprecation_note="Since 2026-09-18 Google serves it only to projects that used it before.",
        ),
        ModelSpec(
            "gemini-3.1-flash-image-preview", "Nano Banana 2 (preview)", aspect_ratios=RATIOS_31,
            resolutions=("512", "1K", "2K", "4K"), max_references=14, google_search=True, enabled=False,
            deprecated=True, replacement="Nano Banana 2", shutdown_on=date(2026, 6, 25),
            deprecation_note="Google shut the preview id down; gemini-3.1-flash-image replaces it.",
        ),
    )  # fmt: skip

    def body(self, request: GenerationRequest) -> dict[str, Any]:
        """A GenerateContentRequest: a call's body, or one request of a batch."""
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
        if not self.store_requests:
            body["store"] = False  # new paid projects otherwise keep it up to 55 days
        return body

    def create(self, request: GenerationRequest) -> Submitted:
        body = self.body(request)
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

    def list_models(self) -> list[VendorModel]:
        """`GET /models`, every page: the image models this key may use."""
        found: list[VendorModel] = []
        token = ""
        for _ in range(50):  # pages; a vendor that never stops paging is cut off
            response = self.call(
                "GET", "/models", params={"pageSize": 1000, **({"pageToken": token} if token else {})},
                headers={"x-goog-api-key": self.api_key}, timeout=30,
            )  # fmt: skip
            answer = json_body(response)
            if response.status_code != 200:
                raise _error(response.status_code, answer, retry_after(response))
            for model in answer.get("models") or []:
                name = str(model.get("name", "")) if isinstance(model, dict) else ""
                model_id = name.removeprefix("models/")
                if "image" in model_id:  # the text, embedding and video models are not ours
                    found.append(VendorModel(model_id, str(model.get("displayName", ""))))
            token = str(answer.get("nextPageToken") or "")
            if not token:
                break
        return found

    # --- the Batch API: many requests as one vendor batch, at half the price, within a day ---

    def batch_create(self, model: str, requests: list[GenerationRequest], display_name: str) -> str:
        """Send these requests (inline) as one batch; the batch's name (`batches/...`). Each
        job then follows `<name>#<index>` through `status`."""
        body = {"batch": {"display_name": display_name[:100], "input_config": {"requests": {"requests": [
            {"request": self.body(request), "metadata": {"key": str(index)}} for index, request in enumerate(requests)
        ]}}}}  # fmt: skip
        response = self.call(
            "POST", f"/models/{model}:batchGenerateContent", json=body, headers={"x-goog-api-key": self.api_key},
            timeout=120,
        )  # fmt: skip
        answer = json_body(response)
        if response.status_code != 200:
            raise _error(response.status_code, answer, retry_after(response))
        name = answer.get("name")
        if not isinstance(name, str) or not name.startswith("batches/"):
            raise ProviderError(ErrorKind.MALFORMED, f"no batch name in {str(answer)[:300]}")
        return name

    def batch_cancel(self, name: str) -> None:
        response = self.call("POST", f"/{name}:cancel", headers={"x-goog-api-key": self.api_key}, timeout=30)
        if response.status_code != 200:
            raise _error(response.status_code, json_body(response), retry_after(response))

    def status(self, task_id: str) -> ProviderStatus:
        """One request of a vendor batch (`<batch name>#<index>`): waiting until the batch ends."""
        name, _, index = task_id.rpartition("#")
        if not name.startswith("batches/") or not index.isdigit():
            raise ProviderError(ErrorKind.NOT_FOUND, f"not a batch request: {task_id}")
        operation = self.read_batch(name)
        metadata = operation.get("metadata") or {}
        state = str(metadata.get("state", "")).rpartition("_STATE_")[2]
        if state in ("", "UNSPECIFIED", "PENDING", "RUNNING") and not operation.get("done"):
            return ProviderStatus(State.QUEUED)
        if state == "SUCCEEDED" or (operation.get("done") and "response" in operation):
            return batch_item(operation, int(index))
        error = operation.get("error") or {}
        detail = f"the vendor's batch ended {state or 'without a state'}: {error.get('message', '')}".strip(": ")
        kind = ErrorKind.EXPIRED if state == "EXPIRED" else ErrorKind.GENERATION_FAILED
        return ProviderStatus(State.FAILED, error=ProviderError(kind, detail))

    def read_batch(self, name: str) -> dict[str, Any]:
        """The batch's operation. Every job of a batch reads it: one read serves them all for a
        moment, and a finished batch's answer (its images) is kept until its jobs took theirs."""
        with _batch_lock:
            now = time.monotonic()
            for stale in [key for key, (until, _) in _batch_reads.items() if until < now]:
                del _batch_reads[stale]
            if name in _batch_reads:
                return _batch_reads[name][1]
            response = self.call(
                "GET", f"/{name}", headers={"x-goog-api-key": self.api_key}, timeout=120, max_bytes=BATCH_MAX_BYTES
            )
            answer = json_body(response)
            if response.status_code != 200:
                raise _error(response.status_code, answer, retry_after(response))
            _batch_reads[name] = (now + (FINISHED_BATCH_SECONDS if answer.get("done") else 1.0), answer)
            return answer


# What `read_batch` keeps, by batch name: (monotonic expiry, the operation).
_batch_reads: dict[str, tuple[float, dict[str, Any]]] = {}
_batch_lock = threading.Lock()
FINISHED_BATCH_SECONDS = 600.0
BATCH_MAX_BYTES = 512 * 1024 * 1024  # what one batch's answer may weigh: `nanoweb.batches.vendor` splits to fit


def batch_item(operation: dict[str, Any], index: int) -> ProviderStatus:
    """The answer to request `index` of a finished batch (inline responses, keyed by our index)."""
    found = (operation.get("response") or {}).get("inlinedResponses") or []
    if isinstance(found, dict):
        found = found.get("inlinedResponses") or []
    by_key = {
        str((item.get("metadata") or {}).get("key", n)): item for n, item in enumerate(found) if isinstance(item, dict)
    }
    item = by_key.get(str(index))
    if item is None:
        return ProviderStatus(State.FAILED, error=ProviderError(ErrorKind.MALFORMED, f"no answer for request {index}"))
    if isinstance(item.get("response"), dict):
        return parse_answer(item["response"])
    error: dict[str, Any] = item["error"] if isinstance(item.get("error"), dict) else {}
    return ProviderStatus(State.FAILED, error=_error(int(error.get("code") or 500), {"error": error}, None))


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
