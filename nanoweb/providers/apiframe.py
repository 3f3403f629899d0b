"""apiframe: 202 submit with an Idempotency-Key, /v2/jobs polling, signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
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

# apiframe also answers 409 and 422 for requests it will not take.
STATUSES = {**HTTP_STATUSES, 409: (ErrorKind.INVALID_INPUT, False), 422: (ErrorKind.INVALID_INPUT, False)}
FORMATS = ("jpg", "png", "webp")


class ApiframeAdapter(Adapter):
    kind = "apiframe"
    label = "apiframe"
    default_base_url = "https://api.apiframe.ai"
    pushes_completion = True
    callback_task_key = "jobId"
    has_balance = True
    idempotent = True  # Idempotency-Key on every create
    reports_progress = True
    # No aspect-ratio field is documented for the API, so none is offered.
    default_models = (
        ModelSpec(
            "nano-banana-2", "Nano Banana 2", resolutions=("512", "1K", "2K", "4K"),
            output_formats=FORMATS, max_references=1, google_search=True,
        ),
        ModelSpec("nano-banana", "Nano Banana", family="Nano Banana", output_formats=FORMATS, max_references=1),
    )  # fmt: skip

    def create(self, request: GenerationRequest) -> Submitted:
        params: dict[str, Any] = {}
        if request.resolution:  # the catalogue's "512" is apiframe's "512px"
            params["resolution"] = "512px" if request.resolution == "512" else request.resolution
        if request.output_format:
            params["output_format"] = request.output_format
        if request.google_search:
            params["google_search"] = True
        if request.reference_urls:
            params["image_input"] = request.reference_urls[0]
        body: dict[str, Any] = {"prompt": request.prompt, "model": request.model, "nanoBananaParams": params}
        if request.callback_url:
            # The seed spells it webhook_url, the vendor's docs webhookUrl (with events): send both.
            body["webhookUrl"] = body["webhook_url"] = request.callback_url
            body["webhookEvents"] = ["completed", "failed"]
        headers = {"Idempotency-Key": request.idempotency_key} if request.idempotency_key else {}
        # With an idempotency key a retried create cannot start a second job, so connection errors may retry.
        answer = self._call("POST", "/v2/images/generate", json=body, headers=headers,
                            retry_connect=bool(request.idempotency_key))  # fmt: skip
        if not answer.get("jobId"):
            raise ProviderError(ErrorKind.MALFORMED, f"generate answered no jobId: {answer!r:.300}")
        return Submitted(task_id=str(answer["jobId"]))

    def status(self, task_id: str) -> ProviderStatus:
        job = self._call("GET", f"/v2/jobs/{task_id}")
        status, progress = job.get("status"), percent(job.get("progress"))
        cost = "" if job.get("creditCost") is None else str(job["creditCost"])
        if status == "QUEUED":
            return ProviderStatus(State.QUEUED, progress)
        if status == "PROCESSING":
            return ProviderStatus(State.RUNNING, progress)
        if status == "COMPLETED":
            return ProviderStatus(State.SUCCEEDED, 100, _result_images(job.get("result")), provider_cost=cost)
        if status == "FAILED":
            error = ProviderError(ErrorKind.GENERATION_FAILED, _message(job.get("error")))
            return ProviderStatus(State.FAILED, error=error, provider_cost=cost)
        raise ProviderError(ErrorKind.MALFORMED, f"unknown job status {status!r}")

    def balance(self) -> str | None:
        team = self._call("GET", "/v2/me").get("team")
        return str(team.get("credits")) if isinstance(team, dict) else None

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> bool:
        """X-Webhook-Signature: hex HMAC-SHA256 of the raw body, keyed by the SHA-256 of the API key.

        Whether the key is the digest's bytes or its hex text is not documented: both are accepted.
        """
        given = headers.get("X-Webhook-Signature", "").strip().removeprefix("sha256=").lower()
        digest = hashlib.sha256(self.api_key.encode())
        return any(
            hmac.compare_digest(given, hmac.new(key, body, hashlib.sha256).hexdigest())
            for key in (digest.digest(), digest.hexdigest().encode())
        )

    def _call(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        response = self.call(method, path, headers={"X-API-Key": self.api_key, **(headers or {})}, **kwargs)
        answer = json_body(response)
        if response.status_code in (200, 201, 202):
            return answer
        kind, retryable = by_http_status(response.status_code, STATUSES)
        detail = f"HTTP {response.status_code}: {_message(answer.get('message') or answer.get('error'))}"
        raise ProviderError(
            kind, detail, retryable=retryable, retry_after=retry_after(response),
            ambiguous=maybe_started(response.status_code),
        )  # fmt: skip


def _result_images(result: Any) -> tuple[ResultImage, ...]:
    """The docs disagree: `result` is a URL, or {"images": [URL, ...]}."""
    if isinstance(result, str) and result:
        return (ResultImage(url=result),)
    if isinstance(result, dict) and isinstance(result.get("images"), list) and result["images"]:
        return tuple(ResultImage(url=url) for url in result["images"] if isinstance(url, str))
    raise ProviderError(ErrorKind.MALFORMED, f"COMPLETED without a usable result: {result!r:.300}")


def _message(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("message") or value)
    return "" if value is None else str(value)
