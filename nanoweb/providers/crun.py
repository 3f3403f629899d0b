"""crun.ai: CreateTask / TaskInfo with a {code, message, data} envelope."""

from __future__ import annotations

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
    json_body,
    maybe_started,
    retry_after,
)

NB2_RATIOS = (
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9",
    "1:4", "4:1", "1:8", "8:1", "21:9", "auto",
)  # fmt: skip
NB_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
# Nano Banana (v1) spells JPEG "jpeg"; the catalogue says "jpg" for every model.
V1_MODELS = ("google/nano-banana", "google/nano-banana-v2")

# Envelope `code` (or HTTP status) → taxonomy. 505 "feature disabled" will not heal by retrying.
ERRORS = {
    401: (ErrorKind.AUTH, False),
    402: (ErrorKind.OUT_OF_CREDIT, False),
    404: (ErrorKind.NOT_FOUND, False),
    422: (ErrorKind.INVALID_INPUT, False),
    429: (ErrorKind.RATE_LIMITED, True),
    455: (ErrorKind.UNAVAILABLE, True),
    500: (ErrorKind.UNAVAILABLE, True),
    501: (ErrorKind.GENERATION_FAILED, False),
    505: (ErrorKind.UNAVAILABLE, False),
}


class CrunAdapter(Adapter):
    kind = "crun"
    label = "crun.ai"
    default_base_url = "https://api.crun.ai"
    pushes_completion = True
    callback_task_key = "task_id"
    has_balance = True
    default_models = (
        ModelSpec(
            "google/nano-banana-2", "Nano Banana 2",
            aspect_ratios=NB2_RATIOS, resolutions=("1K", "2K", "4K"),
            output_formats=("png", "jpg"), max_references=14, google_search=True,
        ),
        # The v2 channel (another row of the same model: routing takes it when its options fit)
        # ignores google_search and output_format.
        ModelSpec(
            "google/nano-banana-2-v2", "Nano Banana 2",
            aspect_ratios=NB2_RATIOS, resolutions=("1K", "2K", "4K"), max_references=14,
        ),
        # Nano Banana (v1) takes at most 3 reference images.
        ModelSpec(
            "google/nano-banana", "Nano Banana", family="Nano Banana",
            aspect_ratios=NB_RATIOS, output_formats=("png", "jpg"), max_references=3,
        ),
        # Its v2 channel ignores output_format and is fixed at 1K.
        ModelSpec(
            "google/nano-banana-v2", "Nano Banana", family="Nano Banana",
            aspect_ratios=NB_RATIOS, max_references=3,
        ),
    )  # fmt: skip

    def create(self, request: GenerationRequest) -> Submitted:
        task_input: dict[str, Any] = {"prompt": request.prompt}
        if request.reference_urls:
            task_input["img_urls"] = list(request.reference_urls)
        if request.aspect_ratio:
            task_input["aspect_ratio"] = request.aspect_ratio
        if request.resolution:
            task_input["resolution"] = request.resolution
        if request.output_format:
            v1 = request.model in V1_MODELS and request.output_format == "jpg"
            task_input["output_format"] = "jpeg" if v1 else request.output_format
        if request.google_search:
            task_input["google_search"] = True
        body: dict[str, Any] = {"model": request.model, "input": task_input}
        if request.callback_url:
            body["callback_url"] = request.callback_url
        data = self._envelope("POST", "/api/v1/client/job/CreateTask", json=body)
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not task_id:
            raise ProviderError(ErrorKind.MALFORMED, f"CreateTask answered no task_id: {data!r:.300}")
        return Submitted(task_id=str(task_id))

    def status(self, task_id: str) -> ProviderStatus:
        data = self._envelope("GET", "/api/v1/client/job/TaskInfo", params={"task_id": task_id})
        if not isinstance(data, dict):
            raise ProviderError(ErrorKind.MALFORMED, f"TaskInfo data is not an object: {data!r:.300}")
        return self.parse_task(data)

    def balance(self) -> str | None:
        data = self._envelope("GET", "/api/v1/client/account/balance")
        return str(data.get("balance")) if isinstance(data, dict) else None

    @staticmethod
    def parse_task(data: dict[str, Any]) -> ProviderStatus:
        status = data.get("status")
        cost = "" if data.get("credits") is None else str(data["credits"])
        result = data.get("result") or {}
        if status == "pending":
            return ProviderStatus(State.QUEUED)
        if status == "running":
            return ProviderStatus(State.RUNNING)  # crun reports no percentage
        if status == "success":
            urls = result.get("media_urls") if isinstance(result, dict) else None
            if not urls or not all(isinstance(u, str) for u in urls):
                raise ProviderError(ErrorKind.MALFORMED, f"success without media_urls: {result!r:.300}")
            return ProviderStatus(State.SUCCEEDED, 100, tuple(ResultImage(url=u) for u in urls), provider_cost=cost)
        if status == "failed":
            code = result.get("code") if isinstance(result, dict) else None
            message = result.get("message", "") if isinstance(result, dict) else ""
            kind, _ = ERRORS.get(code if isinstance(code, int) else 0, (ErrorKind.GENERATION_FAILED, False))
            error = ProviderError(kind, f"{code}: {message}", retryable=False)
            return ProviderStatus(State.FAILED, error=error, provider_cost=cost)
        raise ProviderError(ErrorKind.MALFORMED, f"unknown task status {status!r}")

    def _envelope(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, headers={"x-api-key": self.api_key}, **kwargs)
        body = json_body(response)
        code = body.get("code")
        if response.status_code == 200 and code == 200:
            return body.get("data")
        key = code if code in ERRORS else response.status_code
        kind, retryable = ERRORS.get(key, (ErrorKind.GENERATION_FAILED, False))
        raise ProviderError(
            kind,
            f"HTTP {response.status_code}, code {code}: {body.get('message', '')}",
            retryable=retryable,
            retry_after=retry_after(response),
            ambiguous=maybe_started(key) if isinstance(key, int) else False,
        )
