"""defapi: image/gen and task/query with a {code: 0} envelope, callbacks, URL or data-URI results (as defapi documents it)."""

from __future__ import annotations

import base64
import binascii
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
    retry_after,
)  # fmt: skip


class DefapiAdapter(Adapter):
    kind = "defapi"
    label = "defapi"
    default_base_url = "https://api.defapi.org"
    pushes_completion = True
    callback_task_key = "task_id"
    not_found_grace = 30.0
    # Resolution, aspect ratio, output format and search are not documented: none is offered.
    default_models = (
        ModelSpec("google/gempix2", "Nano Banana 2", max_references=4),
        ModelSpec("google/gemini-2.5-flash-image", "Nano Banana", family="Nano Banana", max_references=4),
    )

    def create(self, request: GenerationRequest) -> Submitted:
        body: dict[str, Any] = {"model": request.model, "prompt": request.prompt}
        if request.reference_urls:
            body["images"] = list(request.reference_urls)
        if request.callback_url:
            body["callback_url"] = request.callback_url
        data = self._call("POST", "/api/image/gen", json=body)
        if not isinstance(data, dict) or not data.get("task_id"):
            raise ProviderError(ErrorKind.MALFORMED, f"image/gen answered no task_id: {data!r:.300}")
        return Submitted(task_id=str(data["task_id"]))

    def status(self, task_id: str) -> ProviderStatus:
        data = self._call("GET", "/api/task/query", params={"task_id": task_id})
        if not isinstance(data, dict):
            raise ProviderError(ErrorKind.MALFORMED, f"task/query data is not an object: {data!r:.300}")
        status, cost = data.get("status"), str(data.get("consumed") or "")
        if status in ("pending", "submitted"):
            return ProviderStatus(State.QUEUED)
        if status == "in_progress":
            return ProviderStatus(State.RUNNING)
        if status == "success":
            return ProviderStatus(State.SUCCEEDED, 100, _result_images(data.get("result")), provider_cost=cost)
        if status == "failed":
            reason = data.get("status_reason") or {}
            message = reason.get("message") if isinstance(reason, dict) else reason
            error = ProviderError(ErrorKind.GENERATION_FAILED, str(message or "no reason given"))
            return ProviderStatus(State.FAILED, error=error, provider_cost=cost)
        raise ProviderError(ErrorKind.MALFORMED, f"unknown task status {status!r}")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, headers={"Authorization": f"Bearer {self.api_key}"}, **kwargs)
        body = json_body(response)
        if response.status_code == 200 and body.get("code") == 0:
            return body.get("data")
        kind, retryable = by_http_status(response.status_code, HTTP_STATUSES, ErrorKind.GENERATION_FAILED)
        detail = (
            f"HTTP {response.status_code}, code {body.get('code')}: {body.get('message', '')} {body.get('detail', '')}"
        )
        raise ProviderError(
            kind, detail.strip(), retryable=retryable, retry_after=retry_after(response),
            ambiguous=maybe_started(response.status_code),
        )  # fmt: skip


def _result_images(result: Any) -> tuple[ResultImage, ...]:
    """A list of {"image": URL or data URI}."""
    images = []
    for item in result if isinstance(result, list) else []:
        value = item.get("image") if isinstance(item, dict) else None
        if isinstance(value, str) and value.startswith("data:"):
            header, _, payload = value.partition(",")
            if ";base64" not in header:
                raise ProviderError(ErrorKind.MALFORMED, "a data URI result that is not base64")
            try:
                images.append(ResultImage(data=base64.b64decode(payload, validate=True)))
            except binascii.Error as exc:
                raise ProviderError(ErrorKind.BAD_RESULT, f"bad base64 in a data URI: {exc}") from exc
        elif isinstance(value, str) and value:
            images.append(ResultImage(url=value))
    if not images:
        raise ProviderError(ErrorKind.MALFORMED, f"success without a result image: {result!r:.300}")
    return tuple(images)
