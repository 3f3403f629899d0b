"""nanophoto.ai: generate / check-status with a generationId. Polling only."""

from __future__ import annotations

from typing import Any

from nanoweb.providers.base import (
    HTTP_STATUSES,
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
    maybe_started,
    percent,
    retry_after,
)  # fmt: skip

# errorCode → (taxonomy, retryable). The HTTP status decides when the code is unknown.
ERROR_CODES = {
    "LOGIN_REQUIRED": (ErrorKind.AUTH, False),
    "FORBIDDEN": (ErrorKind.AUTH, False),
    "NOT_FOUND": (ErrorKind.NOT_FOUND, False),
    "INSUFFICIENT_CREDITS": (ErrorKind.OUT_OF_CREDIT, False),
    "API_KEY_RATE_LIMIT_EXCEEDED": (ErrorKind.RATE_LIMITED, True),
    "INVALID_PROMPT": (ErrorKind.INVALID_INPUT, False),
    "MISSING_INPUT_IMAGE": (ErrorKind.INVALID_INPUT, False),
    "TOO_MANY_IMAGES": (ErrorKind.INVALID_INPUT, False),
    "IMAGE_URLS_REQUIRED": (ErrorKind.INVALID_INPUT, False),
    "CREDIT_RESERVATION_FAILED": (ErrorKind.UNAVAILABLE, True),
    "GENERATION_FAILED": (ErrorKind.GENERATION_FAILED, False),
}


class NanophotoAdapter(Adapter):
    kind = "nanophoto"
    label = "nanophoto.ai"
    default_base_url = "https://nanophoto.ai"
    min_poll_interval = 3.0  # "Poll every 3-5 seconds", says its documentation
    reports_progress = True
    # "Default rate limit: 100 requests per hour per API key" (the vendor's API overview); every
    # request counts, creates and status reads alike.
    documented_limits = {"per_hour": 100}
    typical_seconds = 10.0  # "Typical generation time: 10-30 seconds" (seed 002)
    default_models = (
        ModelSpec(
            "nano-banana-2", "Nano Banana 2",
            aspect_ratios=("16:9", "9:16", "4:3", "3:4"), resolutions=("1K", "2K", "4K"),
            max_references=14, google_search=True,
        ),
    )  # fmt: skip

    def create(self, request: GenerationRequest) -> Submitted:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "mode": "edit" if request.reference_urls else "generate",
            "googleSearch": request.google_search,
        }
        if request.aspect_ratio:
            body["aspectRatio"] = request.aspect_ratio
        if request.resolution:
            body["imageQuality"] = request.resolution
        if request.reference_urls:
            body["inputImageUrls"] = list(request.reference_urls)
        answer = self._post("/api/nano-banana-2/generate", body)
        if not answer.get("generationId"):
            raise ProviderError(ErrorKind.MALFORMED, f"generate answered no generationId: {answer!r:.300}")
        return Submitted(task_id=str(answer["generationId"]))

    def status(self, task_id: str) -> ProviderStatus:
        answer = self._post("/api/nano-banana-2/check-status", {"generationId": task_id}, retry_connect=True)
        status, progress = answer.get("status"), percent(answer.get("progress"))
        if status == "pending":
            return ProviderStatus(State.QUEUED, progress)
        if status == "generating":
            return ProviderStatus(State.RUNNING, progress)
        if status == "completed":
            if not isinstance(answer.get("imageUrl"), str):
                raise ProviderError(ErrorKind.MALFORMED, f"completed without imageUrl: {answer!r:.300}")
            return ProviderStatus(State.SUCCEEDED, 100, (ResultImage(url=answer["imageUrl"]),))
        if status == "failed":
            reason = ProviderError(ErrorKind.GENERATION_FAILED, str(answer.get("error", "")))
            return ProviderStatus(State.FAILED, error=reason)
        raise ProviderError(ErrorKind.MALFORMED, f"unknown status {status!r}")

    def _post(self, path: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        response = self.call("POST", path, json=body, headers={"Authorization": f"Bearer {self.api_key}"}, **kwargs)
        answer = json_body(response)
        # A failed generation is a normal status answer (success false, status failed), not an error.
        if response.status_code == 200 and (answer.get("success") or answer.get("status") == "failed"):
            return answer
        code = answer.get("errorCode")
        kind, retryable = ERROR_CODES.get(str(code)) or by_http_status(response.status_code, HTTP_STATUSES)
        raise ProviderError(
            kind, f"HTTP {response.status_code} {code}: {answer.get('error', '')}",
            retryable=retryable, retry_after=retry_after(response),
            ambiguous=code != "CREDIT_RESERVATION_FAILED" and maybe_started(response.status_code),
        )  # fmt: skip
