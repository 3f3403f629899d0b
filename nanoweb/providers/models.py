from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from nanoweb.lib.ratelimit import Limits
from nanoweb.providers.base import Adapter, ModelSpec, ProviderError
from nanoweb.providers.registry import ADAPTERS, adapter_class

MAX_PRICE = Decimal("100")  # per image; anything above is a typo, not a price


def no_user_info(url: str) -> None:
    """A base URL carries no credentials: they would travel in error texts and logs (the key
    field is the one write-only place for a secret)."""
    if "@" in urlsplit(url).netloc:
        raise ValidationError(
            "Put no user name or password in the base URL: the API key field is where credentials go.",
            code="user_info",
        )


class ProviderAccount(models.Model):
    """A key at one provider. The key never leaves the server: not rendered, not logged."""

    kind = models.CharField(max_length=20, choices=[(k, a.label) for k, a in ADAPTERS.items()])
    name = models.CharField(max_length=80, unique=True)
    base_url = models.URLField(
        validators=[no_user_info], help_text="The vendor's API root; change it for proxies, staging or the simulator."
    )
    api_key = models.CharField(max_length=500)
    enabled = models.BooleanField(default=True)
    priority = models.PositiveSmallIntegerField(
        default=100, help_text="Automatic routing tries accounts with a lower number first, then the cheaper one."
    )
    # The vendor's limits on requests (creates and status reads together), each optional: a new
    # account starts with what its vendor documents (nanophoto.ai: 100 an hour).
    rate_limit = models.FloatField(
        "requests per second",
        null=True,
        blank=True,
        default=10.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(1000)],
        help_text="Requests per second nanoweb may send this account. Empty: no limit per second.",
    )
    per_minute = models.PositiveIntegerField(
        "requests per minute",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="Empty: no limit per minute.",
    )
    per_hour = models.PositiveIntegerField(
        "requests per hour",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(1_000_000)],
        help_text="Empty: no limit per hour. Vendors raise their default on request: enter what yours allows.",
    )
    max_in_flight = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Jobs nanoweb may have out at this account at once (for the Gemini API: calls in flight). "
        "Empty: the vendor's default.",
    )
    # Requests nanoweb sent this account, and 429s it got back, per minute of the last hour
    # ({"<epoch minute>": [sent, refused]}), as the sweep's limiter counted them.
    requests_by_minute = models.JSONField(default=dict, blank=True, editable=False)
    # Set when the provider answered "bad key" or "out of credit": no new jobs until staff resume it.
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=300, blank=True)
    # The vendor's balance as last read (where it has a balance endpoint).
    balance = models.CharField(max_length=200, blank=True)
    balance_checked_at = models.DateTimeField(null=True, blank=True)
    store_requests = models.BooleanField(
        "let the vendor keep requests",
        default=False,
        help_text="Google's Gemini API only. Since 2026-10-26 Google keeps the generateContent and batch requests "
        "of new paid projects (prompts, reference images, results) for up to 55 days unless a request says "
        "store: false. Off (the default): nanoweb sends store: false with every request.",
    )
    # The vendor's own list of its image models, as last read (where it has one): [[id, name], ...].
    vendor_models = models.JSONField(default=list, blank=True)
    vendor_models_checked_at = models.DateTimeField(null=True, blank=True)
    vendor_models_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A new account starts with its vendor's model catalogue."""
        created = self._state.adding
        if created and self.kind:
            for name, value in self.adapter_class.documented_limits.items():
                if getattr(self, name) is None:
                    setattr(self, name, value)
        super().save(*args, **kwargs)
        if created:
            fill_catalogue(self)

    @property
    def adapter_class(self) -> type[Adapter]:
        return adapter_class(self.kind)

    def adapter(self) -> Adapter:
        return self.adapter_class(base_url=self.base_url, api_key=self.api_key, store_requests=self.store_requests)

    @property
    def limits(self) -> Limits:
        """What the rate limiter keeps this account to."""
        return Limits(per_second=self.rate_limit, per_minute=self.per_minute, per_hour=self.per_hour)

    def requests_since(self, seconds: float = 3600) -> tuple[int, int]:
        """Requests sent, and refused by the vendor, over the last `seconds` (whole minutes)."""
        first = int((timezone.now().timestamp() - seconds) // 60) + 1
        counted = [pair for minute, pair in self.requests_by_minute.items() if int(minute) >= first]
        return sum(sent for sent, _ in counted), sum(refused for _, refused in counted)

    @property
    def in_flight_limit(self) -> int | None:
        """Jobs this account may have out at once (None: no limit)."""
        return self.max_in_flight or self.adapter_class.max_in_flight

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    @property
    def fetches_references(self) -> bool:
        """The provider downloads reference images from our public address (not sent inline)."""
        return not self.adapter_class.inline_references

    def pause(self, reason: str) -> bool:
        """Stop routing new jobs here (once; the first reason stays). True if this paused it."""
        paused = ProviderAccount.objects.filter(pk=self.pk, paused_at__isnull=True).update(
            paused_at=timezone.now(), paused_reason=reason[:300]
        )
        if paused:
            self.refresh_from_db(fields=["paused_at", "paused_reason"])
        return bool(paused)

    def resume(self) -> None:
        ProviderAccount.objects.filter(pk=self.pk).update(paused_at=None, paused_reason="")
        self.paused_at, self.paused_reason = None, ""


@dataclass(frozen=True)
class Options:
    """What a member chose besides the prompt; empty means the provider's default."""

    aspect_ratio: str = ""
    resolution: str = ""
    output_format: str = ""
    google_search: bool = False


class CatalogueEntry(models.Model):
    """One model id as one account offers it: what the form shows, what routing matches,
    and what an image costs. Staff keep it current in the admin; vendors rename often."""

    account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="catalogue")
    model_id = models.CharField(max_length=120, help_text="The vendor's model id, as its API spells it.")
    name = models.CharField(
        max_length=80,
        help_text="What members choose, e.g. Nano Banana 2. Accounts whose rows share a name serve one model.",
    )
    family = models.CharField(max_length=80, default="Nano Banana 2", help_text="Which Google model it is.")
    aspect_ratios = models.JSONField(default=list, blank=True)
    resolutions = models.JSONField(default=list, blank=True)
    output_formats = models.JSONField(default=list, blank=True)
    max_references = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(50)])
    google_search = models.BooleanField(default=False, help_text="Can ground the image with Google Search.")
    prices = models.JSONField(
        default=dict, blank=True, help_text='What one image costs the team, per resolution ("" without a choice).'
    )
    enabled = models.BooleanField(default=True)
    deprecated = models.BooleanField(default=False)
    deprecation_note = models.CharField(max_length=300, blank=True)
    replacement = models.CharField(max_length=80, blank=True, help_text="The model to use instead (its name).")
    shutdown_on = models.DateField(null=True, blank=True, help_text="From this day on the model is refused.")
    price_confirmed = models.BooleanField(
        default=True, help_text="Off: the price is a stand-in (the vendor published none yet); check and confirm it."
    )
    # When the vendor answered 404 for this id (a create, or its list lacked it); cleared when listed again.
    vendor_missing_at = models.DateTimeField("vendor does not know it since", null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "account__priority", "account__name", "model_id"]
        verbose_name = "catalogue model"
        constraints = [models.UniqueConstraint(fields=["account", "model_id"], name="one_row_per_account_model")]

    def __str__(self) -> str:
        return f"{self.name} · {self.account} ({self.model_id})"

    @property
    def default_resolution(self) -> str:
        return "1K" if "1K" in self.resolutions else (self.resolutions[0] if self.resolutions else "")

    def price(self, resolution: str) -> Decimal:
        """What one image costs at this resolution (the default one when none was chosen)."""
        if not self.resolutions:
            return Decimal(self.prices[""])
        return Decimal(self.prices[resolution if resolution in self.resolutions else self.default_resolution])

    @property
    def incomplete(self) -> str:
        """Why this row cannot be offered as it stands (a price missing, say), or "". Such a
        row is not offered to members; staff see the reason in the catalogue."""
        try:
            self.clean()
        except ValidationError as error:
            return " ".join(message for messages in error.message_dict.values() for message in messages)
        return ""

    def shut_down(self, today: date | None = None) -> bool:
        return self.shutdown_on is not None and self.shutdown_on <= (today or timezone.localdate())

    def unsupported(self, options: Options, references: int) -> str:
        """Why this row cannot serve these options, or "" when it can."""
        for label, value, offered in (
            ("aspect ratio", options.aspect_ratio, self.aspect_ratios),
            ("resolution", options.resolution, self.resolutions),
            ("format", options.output_format, self.output_formats),
        ):
            if value and value not in offered:
                return f"no {label} {value}"
        if options.google_search and not self.google_search:
            return "no Google Search grounding"
        if references > self.max_references:
            return f"at most {self.max_references} reference images"
        return ""

    def request_options(self, options: Options) -> Options:
        """The options to send: only what this row offers, its defaults where nothing was chosen."""
        return Options(
            aspect_ratio=options.aspect_ratio if self.aspect_ratios else "",
            resolution=(options.resolution or self.default_resolution) if self.resolutions else "",
            output_format=options.output_format if self.output_formats else "",
            google_search=options.google_search and self.google_search,
        )

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for name in ("aspect_ratios", "resolutions", "output_formats"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 10 for v in value):
                errors[name] = "A list of short values, e.g. 1:1, 16:9."
        if not isinstance(self.prices, dict):
            errors["prices"] = "Give a price per resolution."
        elif "resolutions" not in errors:
            needed = set(self.resolutions) or {""}
            missing = needed - set(self.prices)
            if missing:
                errors["prices"] = "A price is missing for: " + ", ".join(
                    sorted(m or "(no resolution)" for m in missing)
                )
            for value in self.prices.values():
                try:
                    amount = Decimal(str(value))
                except InvalidOperation:
                    errors["prices"] = f"{value!r} is not an amount."
                    break
                if not (0 <= amount <= MAX_PRICE):
                    errors["prices"] = f"{value} is not a plausible price (0 to {MAX_PRICE} per image)."
                    break
        if self.deprecated and not self.deprecation_note.strip():
            errors["deprecation_note"] = "Say why it is deprecated, for the members who still use it."
        if errors:
            raise ValidationError(errors)


def entry_fields(spec: ModelSpec) -> dict[str, Any]:
    """A catalogue row's values from the vendor's defaults (prices apart)."""
    return {
        "name": spec.name,
        "family": spec.family,
        "aspect_ratios": list(spec.aspect_ratios),
        "resolutions": list(spec.resolutions),
        "output_formats": list(spec.output_formats),
        "max_references": spec.max_references,
        "google_search": spec.google_search,
        "deprecated": spec.deprecated,
        "deprecation_note": spec.deprecation_note,
        "replacement": spec.replacement,
        "shutdown_on": spec.shutdown_on,
    }


def fill_catalogue(account: ProviderAccount) -> int:
    """Add the vendor's default models this account lacks; rows staff made or edited stay."""
    known = set(account.catalogue.values_list("model_id", flat=True))
    new = [
        CatalogueEntry(
            account=account,
            model_id=spec.id,
            prices=spec.prices,
            enabled=spec.enabled,
            price_confirmed=spec.price_confirmed,
            **entry_fields(spec),
        )  # fmt: skip
        for spec in account.adapter_class.default_models
        if spec.id not in known
    ]
    CatalogueEntry.objects.bulk_create(new)
    return len(new)


def refresh_catalogue(account: ProviderAccount) -> int:
    """Bring the vendor's models back to its defaults (capabilities, names, deprecations) and add
    missing ones. Prices, enabled flags and staff-added model ids are the team's: they stay; a
    resolution the defaults bring back gets the vendor's price. Each row is validated as staff's
    own edits are: a row that would not be whole is left as it was."""
    changed = 0
    for spec in account.adapter_class.default_models:
        row = account.catalogue.filter(model_id=spec.id).first()
        if row is None:
            continue
        for name, value in entry_fields(spec).items():
            setattr(row, name, value)
        row.prices = {**{size: spec.prices[size] for size in spec.prices if size not in row.prices}, **row.prices}
        try:
            row.full_clean()
        except ValidationError:
            continue
        row.save()
        changed += 1
    return changed + fill_catalogue(account)


class Attempt(models.Model):
    """One create call of a job at one account: what the detail page, failover and the health
    figures read. A job has one per try; after it is accepted, the row follows the job's end."""

    class Outcome(models.TextChoices):
        SENDING = "sending", "Sending"
        ACCEPTED = "accepted", "Accepted"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        RETRIED = "retried", "Tried again later"
        MOVED = "moved", "Moved to another account"
        CANCELED = "canceled", "Canceled"

    # Outcomes that close a job's stay on the account (each job has at most one per account).
    FINAL = frozenset({Outcome.SUCCEEDED, Outcome.FAILED, Outcome.MOVED})

    generation = models.ForeignKey("studio.Generation", on_delete=models.CASCADE, related_name="attempt_log")
    account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="attempts")
    model_id = models.CharField(max_length=120)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SENDING)
    error_kind = models.CharField(max_length=20, blank=True)
    message = models.TextField(blank=True, help_text="The provider's own words.")
    detail = models.TextField(blank=True, help_text="What nanoweb saw on the wire, for staff (no answer came).")
    # The provider may have started the job although the call failed (a timeout, a 5xx after
    # sending): the job then never moves to another account, which would charge it again.
    ambiguous = models.BooleanField(default=False)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [models.Index(fields=["account", "started_at"])]

    def __str__(self) -> str:
        return f"{self.account} {self.get_outcome_display()} at {self.started_at:%H:%M:%S}"

    @staticmethod
    def error_fields(error: ProviderError | None) -> dict[str, str]:
        """How an error is recorded: the provider's words (members read them), else nanoweb's own
        account of it (staff only)."""
        if error is None:
            return {"error_kind": "", "message": "", "detail": ""}
        return {"error_kind": error.kind, "message": error.said, "detail": "" if error.said else error.detail}
