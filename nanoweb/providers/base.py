"""The adapter interface every provider implements, and the one error taxonomy.

An adapter turns a unified `GenerationRequest` into the vendor's wire format and the
vendor's answers into a unified `ProviderStatus`. It never touches the database.
"""

from __future__ import annotations

import enum
import functools
import json
from base64 import b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from nanoweb.lib import http


class ErrorKind(enum.StrEnum):
    AUTH = "auth"
    OUT_OF_CREDIT = "out_of_credit"
    INVALID_INPUT = "invalid_input"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    GENERATION_FAILED = "generation_failed"
    CONTENT_BLOCKED = "content_blocked"
    NO_IMAGE = "no_image"
    NOT_FOUND = "not_found"
    MALFORMED = "malformed"
    BAD_RESULT = "bad_result"
    EXPIRED = "expired"
    INTERNAL = "internal"
    UNKNOWN_MODEL = "unknown_model"
    BLOCKED_ADDRESS = "blocked_address"


# What a team member reads on the job; the provider's own words go to `detail`.
ERROR_MESSAGES = {
    ErrorKind.AUTH: "The provider rejected the account's API key: ask an admin to check it.",
    ErrorKind.OUT_OF_CREDIT: "The provider account is out of credit: ask an admin.",
    ErrorKind.INVALID_INPUT: "The provider refused the request's parameters.",
    ErrorKind.RATE_LIMITED: "The provider is rate limiting this account; try again shortly.",
    ErrorKind.UNAVAILABLE: "The provider is unavailable right now (maintenance or outage).",
    ErrorKind.GENERATION_FAILED: "The provider could not generate this image.",
    ErrorKind.CONTENT_BLOCKED: "The provider blocked this prompt or image for safety reasons.",
    ErrorKind.NO_IMAGE: "The model answered without an image: try rewording the prompt.",
    ErrorKind.NOT_FOUND: "The provider no longer knows this job.",
    ErrorKind.MALFORMED: "The provider sent an answer nanoweb could not understand.",
    ErrorKind.BAD_RESULT: "The provider's result could not be downloaded as a valid image.",
    ErrorKind.EXPIRED: "The job did not finish in time.",
    ErrorKind.INTERNAL: "nanoweb failed while handling this job.",
    ErrorKind.UNKNOWN_MODEL: "The provider does not offer this model id (any more): ask an admin to update the catalogue.",
    ErrorKind.BLOCKED_ADDRESS: "nanoweb refused to contact this account's address (a private network): ask an admin.",
}

RETRYABLE = {ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE}

# What the common HTTP error statuses mean, for vendors that answer errors by status.
HTTP_STATUSES = {
    400: (ErrorKind.INVALID_INPUT, False), 401: (ErrorKind.AUTH, False), 402: (ErrorKind.OUT_OF_CREDIT, False),
    403: (ErrorKind.AUTH, False), 404: (ErrorKind.NOT_FOUND, False), 429: (ErrorKind.RATE_LIMITED, True),
}  # fmt: skip


def by_http_status(
    status_code: int, known: dict[int, tuple[ErrorKind, bool]], otherwise: ErrorKind = ErrorKind.MALFORMED
) -> tuple[ErrorKind, bool]:
    """The taxonomy entry for an HTTP status: the vendor's table, else a 5xx is a retryable
    outage, else `otherwise` (not retryable)."""
    if status_code in known:
        return known[status_code]
    return (ErrorKind.UNAVAILABLE, True) if status_code >= 500 else (otherwise, False)


def maybe_started(status_code: int) -> bool:
    """Whether an error answer to a create leaves open that the vendor started the job: a 500,
    502 or 504 may come after the work began; 503 (unavailable) and 505 (disabled) refuse it."""
    return status_code >= 500 and status_code not in (503, 505)


class ProviderError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        detail: str = "",
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
        ambiguous: bool = False,
        transport: bool = False,
    ):
        self.kind = kind
        self.detail = detail[:2000]
        self.retryable = kind in RETRYABLE if retryable is None else retryable
        self.retry_after = retry_after
        # The request may have reached the provider (a timeout, a dropped connection):
        # a create that failed so may still have started a job.
        self.ambiguous = ambiguous
        # The detail is nanoweb's own account (no answer came: a transport failure), not the
        # provider's words: staff read it, members only our sentence.
        self.transport = transport
        super().__init__(f"{kind}: {self.detail}")

    @property
    def message(self) -> str:
        return ERROR_MESSAGES[self.kind]

    @property
    def said(self) -> str:
        """The provider's own words, which members may read ("" when it said nothing)."""
        return "" if self.transport else self.detail


class State(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# Approximate per-image prices (USD) of Google's paid tier (its published prices): what a new catalogue
# row costs until staff enter the vendor's real figure. "" is the price without a resolution choice.
LIST_PRICES = {
    "Nano Banana 2": {"512": "0.045", "1K": "0.067", "2K": "0.101", "4K": "0.151"},
    # No list price found yet: Nano Banana 2's until staff confirm it (its rows say so).
    "Nano Banana 2.1": {"512": "0.045", "1K": "0.067", "2K": "0.101", "4K": "0.151"},
    "Nano Banana Pro": {"1K": "0.134", "2K": "0.134", "4K": "0.24"},
    "Nano Banana 2 Lite": {"1K": "0.034"},
    "Nano Banana": {"": "0.039"},
}


@dataclass(frozen=True)
class ModelSpec:
    """One model as the vendor offers it today: the default of a catalogue row (staff edit the row)."""

    id: str
    name: str
    family: str = "Nano Banana 2"
    aspect_ratios: tuple[str, ...] = ()
    resolutions: tuple[str, ...] = ()
    output_formats: tuple[str, ...] = ()
    max_references: int = 0
    google_search: bool = False
    enabled: bool = True
    deprecated: bool = False
    deprecation_note: str = ""
    replacement: str = ""
    shutdown_on: date | None = None
    price_confirmed: bool = True  # False: the list price is a stand-in until staff confirm it

    @property
    def prices(self) -> dict[str, str]:
        """The family's list price for each resolution offered (or "" without a choice)."""
        table = LIST_PRICES.get(self.family, LIST_PRICES["Nano Banana 2"])
        if not self.resolutions:
            return {"": table.get("", table.get("1K", "0.067"))}
        return {size: table.get(size, table.get("1K", "0.067")) for size in self.resolutions}


@dataclass(frozen=True, eq=False)
class InlineImage:
    """A reference image sent in the request itself. Its base64 text is made once, however many
    requests carry it: the jobs of one set share these objects (pipeline.inline_images)."""

    data: bytes = field(repr=False)
    mime_type: str

    @functools.cached_property
    def base64(self) -> str:
        return b64encode(self.data).decode()


@dataclass(frozen=True)
class VendorModel:
    """A model id as the vendor lists it."""

    id: str
    name: str = ""


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    model: str
    aspect_ratio: str = ""
    resolution: str = ""
    output_format: str = ""
    google_search: bool = False
    reference_urls: tuple[str, ...] = ()
    # For APIs that take references inline rather than by URL.
    reference_images: tuple[InlineImage, ...] = ()
    callback_url: str = ""
    idempotency_key: str = ""


@dataclass(frozen=True)
class ResultImage:
    """Either a URL to download at once (it expires) or the bytes themselves."""

    url: str = ""
    data: bytes = b""


@dataclass(frozen=True)
class ProviderStatus:
    state: State
    progress: int = 0
    images: tuple[ResultImage, ...] = ()
    error: ProviderError | None = None
    provider_cost: str = ""


@dataclass(frozen=True)
class Submitted:
    """A create call's answer: a task id to follow, or (synchronous APIs) the final status."""

    task_id: str = ""
    status: ProviderStatus | None = None


@dataclass
class Adapter:
    """One provider account's view of its vendor API."""

    kind: ClassVar[str]
    label: ClassVar[str]
    default_base_url: ClassVar[str]
    # The vendor's models as they are today: what a new account's catalogue starts with.
    default_models: ClassVar[tuple[ModelSpec, ...]]
    pushes_completion: ClassVar[bool] = False
    # Where a completion callback's body names the task (a key of the body or of its `data`).
    callback_task_key: ClassVar[str] = ""
    has_balance: ClassVar[bool] = False
    # The API answers the create call with the image itself (no task id to follow).
    synchronous: ClassVar[bool] = False
    # Seconds after submitting during which "not found" means "not yet" (defapi's indexing lag).
    not_found_grace: ClassVar[float] = 0.0
    # The provider dedupes creates by our idempotency key, so an uncertain create may be retried.
    idempotent: ClassVar[bool] = False
    # Reference images go in the request itself; otherwise the provider fetches them by URL.
    inline_references: ClassVar[bool] = False
    # The most reference bytes one request may carry inline (the vendor's request limit, less
    # base64's third and room for the rest); None: no stated limit.
    max_inline_bytes: ClassVar[int | None] = None
    # The fewest seconds between two requests about one job (the vendor's documented
    # polling interval); the pipeline's schedule (studio/schedule.py) never reads sooner.
    min_poll_interval: ClassVar[float] = 1.0
    # Status answers carry a progress figure worth extrapolating to 100 %.
    reports_progress: ClassVar[bool] = False
    # Jobs the vendor lets one key have out at once (None: no stated limit); an account may set its own.
    max_in_flight: ClassVar[int | None] = None
    # The request limits the vendor documents, by account field (rate_limit, per_minute, per_hour):
    # what a new account starts with. Staff change them per account (vendors raise them on request).
    documented_limits: ClassVar[dict[str, float | int]] = {}
    # The shortest typical duration the vendor documents (seconds): where a job's first read goes
    # when the account's budget is tight and its history says nothing yet.
    typical_seconds: ClassVar[float | None] = None
    # The vendor lists the model ids a key may use (`list_models`).
    lists_models: ClassVar[bool] = False
    # The vendor may keep what members send unless each request opts out (`store_requests`).
    may_store_requests: ClassVar[bool] = False
    # The vendor runs many requests as one batch at a lower price (`batch_*` methods).
    vendor_batches: ClassVar[bool] = False

    base_url: str
    api_key: str = field(repr=False)
    # Called before every API request (the pipeline waits here for the account's rate limit).
    before_request: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)
    # The account lets the vendor keep requests (prompts, references, results); else each request opts out.
    store_requests: bool = False

    def create(self, request: GenerationRequest) -> Submitted:
        raise NotImplementedError

    def status(self, task_id: str) -> ProviderStatus:
        raise NotImplementedError

    def balance(self) -> str | None:
        """The account's balance as the vendor reports it, or None without an endpoint."""
        return None

    def check_account(self) -> bool:
        """A cheap call that needs a working key (the balance; Gemini: the model list): True when
        the account answered, False when the vendor offers no such call. A refusal raises
        ProviderError, and a balance of nothing is an OUT_OF_CREDIT one."""
        if not self.has_balance:
            return False
        left = self.balance()
        try:
            empty = left is not None and Decimal(left) <= 0
        except ArithmeticError:
            empty = False
        if empty:
            raise ProviderError(ErrorKind.OUT_OF_CREDIT, f"balance {left}")
        return True

    def list_models(self) -> list[VendorModel]:
        """The image models the vendor offers this key (only where `lists_models`)."""
        raise NotImplementedError

    def batch_create(self, model: str, requests: list[GenerationRequest], display_name: str) -> str:
        """Send requests as one vendor batch (only where `vendor_batches`); the batch's name."""
        raise NotImplementedError

    def batch_cancel(self, name: str) -> None:
        raise NotImplementedError

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether a callback is authentic. Unsigned protocols cannot tell: the callback only
        wakes the job, and the status is then read with our key, so a forgery changes nothing."""
        return True

    def callback_task_id(self, body: bytes) -> str:
        """The task a callback's body names ("" if none): untrusted, like the rest of the body,
        until a status read with our key finds it."""
        try:
            data = json.loads(body)
        except ValueError:
            return ""
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]  # an envelope around the task
        task = data.get(self.callback_task_key) if isinstance(data, dict) and self.callback_task_key else None
        return str(task) if isinstance(task, str | int) and task else ""

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def call(self, method: str, path: str, **kwargs: Any) -> http.Response:
        """Make a request to the vendor; network failures become retryable errors."""
        self.before_request()
        try:
            return http.request(method, self.url(path), **kwargs)
        except http.BlockedAddress as exc:  # a configuration error: nothing was sent
            raise ProviderError(ErrorKind.BLOCKED_ADDRESS, str(exc), retryable=False, transport=True) from exc
        except http.ConnectFailed as exc:  # nothing was sent
            raise ProviderError(ErrorKind.UNAVAILABLE, str(exc), transport=True) from exc
        except http.Timeout as exc:
            raise ProviderError(ErrorKind.UNAVAILABLE, f"timed out: {exc}", ambiguous=True, transport=True) from exc
        except http.OutboundError as exc:
            raise ProviderError(ErrorKind.UNAVAILABLE, str(exc), ambiguous=True, transport=True) from exc


def json_body(response: http.Response) -> dict[str, Any]:
    """The answer as a JSON object, or a MALFORMED error that keeps the raw text."""
    try:
        body = response.json()
    except ValueError:
        raise ProviderError(
            ErrorKind.UNAVAILABLE if response.status_code >= 500 else ErrorKind.MALFORMED,
            f"HTTP {response.status_code}, not JSON: {response.text[:300]}",
            ambiguous=maybe_started(response.status_code),
        ) from None
    if not isinstance(body, dict):
        raise ProviderError(ErrorKind.MALFORMED, f"HTTP {response.status_code}: {body!r:.300}")
    return body


def retry_after(response: http.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def percent(value: Any) -> int:
    """A vendor's progress figure as 0-100, or 0 when it sent none or nonsense."""
    try:
        return max(0, min(100, int(value)))
    except (TypeError, ValueError):
        return 0
