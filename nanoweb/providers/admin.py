from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from nanoweb.providers import status
from nanoweb.providers.models import CatalogueEntry, ProviderAccount, no_user_info, refresh_catalogue


class ProviderAccountForm(forms.ModelForm):
    """The API key is write-only: the field is always rendered empty; empty keeps the old key."""

    base_url = forms.URLField(
        assume_scheme="https",
        validators=[no_user_info],
        help_text=ProviderAccount._meta.get_field("base_url").help_text,
    )
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the current key.",
    )

    class Meta:
        model = ProviderAccount
        fields = [
            "name", "kind", "base_url", "api_key", "enabled", "priority", "rate_limit", "per_minute", "per_hour",
            "max_in_flight", "store_requests",
        ]  # fmt: skip

    def clean_api_key(self) -> str:
        key = self.cleaned_data["api_key"].strip()
        if key:
            return key
        if self.instance.pk:
            return self.instance.api_key
        raise forms.ValidationError("A new account needs an API key.")


class CatalogueInline(admin.TabularInline):
    model = CatalogueEntry
    extra = 0
    fields = ["name", "model_id", "enabled", "deprecated", "shutdown_on", "price_confirmed", "vendor_missing_at"]
    readonly_fields = ["name", "model_id", "deprecated", "shutdown_on", "price_confirmed", "vendor_missing_at"]
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ["name", "kind", "enabled", "priority", "limits", "paused_reason", "has_key", "balance_now",
                    "completion", "references", "errors_24h"]  # fmt: skip
    list_filter = ["kind", "enabled"]
    readonly_fields = ["paused_at", "paused_reason", "balance_now", "completion", "references", "errors_24h"]
    inlines = [CatalogueInline]
    actions = ["pause", "resume", "refresh_catalogue"]

    @admin.display(description="request limits")
    def limits(self, account: ProviderAccount) -> str:
        windows = account.limits.windows
        shown = [account.limits.describe(window) for window in windows]
        if account.in_flight_limit:
            shown.append(f"{account.in_flight_limit} in flight")
        return ", ".join(shown) or "none"

    @admin.display(boolean=True, description="key set")
    def has_key(self, account: ProviderAccount) -> bool:
        return bool(account.api_key)

    @admin.display(description="balance (vendor's unit)")
    def balance_now(self, account: ProviderAccount) -> str:
        return status.balance(account) if account.pk else "—"

    @admin.display(description="completion")
    def completion(self, account: ProviderAccount) -> str:
        return status.completion_mode(account) if account.pk else "—"

    @admin.display(description="reference images")
    def references(self, account: ProviderAccount) -> str:
        return status.reference_mode(account) if account.pk else "—"

    @admin.display(description="failures, last 24 h")
    def errors_24h(self, account: ProviderAccount) -> str:
        errors = status.recent_errors(account) if account.pk else {}
        return ", ".join(f"{kind or 'unknown'}: {n}" for kind, n in errors.items()) or "none"

    @admin.action(description="Pause the selected accounts (no new jobs until resumed)")
    def pause(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        paused = sum(account.pause(f"paused by {request.user.get_username()}.") for account in queryset)
        self.message_user(request, f"Paused {paused} account(s); jobs already there finish.", messages.SUCCESS)

    @admin.action(description="Resume the selected accounts (take new jobs again)")
    def resume(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        for account in queryset:
            account.resume()
        self.message_user(request, f"Resumed {len(queryset)} account(s).", messages.SUCCESS)

    @admin.action(description="Refresh the model catalogue from the vendor's defaults")
    def refresh_catalogue(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        changed = sum(refresh_catalogue(account) for account in queryset)
        self.message_user(
            request,
            f"{changed} model(s) brought to the vendor's defaults; prices, enabled flags and added models are kept.",
            messages.SUCCESS,
        )


class ListField(forms.CharField):
    """A list of short values, edited as comma-separated text."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        return [part.strip() for part in str(value or "").split(",") if part.strip()]


class PricesField(forms.CharField):
    """Prices per resolution, edited as `1K=0.067, 2K=0.101` (a bare `0.039` without resolutions)."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return ", ".join(f"{size}={amount}" if size else str(amount) for size, amount in value.items())
        return value

    def to_python(self, value: Any) -> dict[str, str]:  # type: ignore[override]
        prices = {}
        for part in str(value or "").split(","):
            if not part.strip():
                continue
            size, _, amount = part.rpartition("=")
            try:
                prices[size.strip()] = str(Decimal(amount.strip()))
            except InvalidOperation:
                raise forms.ValidationError(f"{part.strip()!r}: write resolution=amount, e.g. 1K=0.067.") from None
        return prices


class CatalogueEntryForm(forms.ModelForm):
    aspect_ratios = ListField(required=False, help_text="Comma-separated, e.g. 1:1, 16:9. Empty: no choice.")
    resolutions = ListField(required=False, help_text="Comma-separated, e.g. 1K, 2K, 4K. Empty: no choice.")
    output_formats = ListField(required=False, help_text="Comma-separated, e.g. png, jpg. Empty: no choice.")
    prices = PricesField(
        help_text="What one image costs the team, e.g. 1K=0.067, 2K=0.101; a single amount for models "
        "without a resolution choice."
    )

    class Meta:
        model = CatalogueEntry
        fields = ["account", "model_id", "name", "family", "enabled", "aspect_ratios", "resolutions", "output_formats",
                  "max_references", "google_search", "prices", "price_confirmed", "deprecated", "deprecation_note",
                  "replacement", "shutdown_on"]  # fmt: skip


@admin.register(CatalogueEntry)
class CatalogueEntryAdmin(admin.ModelAdmin):
    form = CatalogueEntryForm
    list_display = ["name", "account", "model_id", "enabled", "deprecated", "shutdown_on", "price_list", "offered",
                    "vendor_missing_at"]  # fmt: skip
    list_filter = ["account", "enabled", "deprecated", "price_confirmed", "name"]
    readonly_fields = ["vendor_missing_at"]
    list_editable = ["enabled"]
    search_fields = ["name", "model_id"]
    list_select_related = ["account"]
    actions = ["duplicate"]
    save_as = True  # "Save as new" on a row's page: a copy under another model id

    @admin.display(description="prices")
    def price_list(self, entry: CatalogueEntry) -> str:
        """One resolution a line, never cut: `1K 0.067`."""
        prices = format_html_join(
            mark_safe("<br>"),
            '<span class="nowrap">{} {}</span>',
            ((size or "each", amount) for size, amount in entry.prices.items()),
        )
        return prices if entry.price_confirmed else format_html("{}<br>(price unconfirmed)", prices)

    @admin.action(description="Duplicate the selected model (a new model id, starting as a copy of this row)")
    def duplicate(self, request: HttpRequest, queryset: QuerySet[CatalogueEntry]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Choose one model to duplicate.", messages.WARNING)
            return None
        entry = queryset.get()
        form = CatalogueEntryForm(instance=entry)
        values = {name: form[name].value() for name in form.fields if name != "model_id"}
        values = {
            name: ("on" if value else "") if isinstance(value, bool) else PricesField().prepare_value(ListField().prepare_value(value))
            for name, value in values.items() if value not in (None, "")
        }  # fmt: skip
        values["name"] = entry.name
        return redirect(f"{reverse('admin:providers_catalogueentry_add')}?{urlencode(values)}")

    @admin.display(description="offered to members")
    def offered(self, entry: CatalogueEntry) -> str:
        return f"No: {problem}" if (problem := entry.incomplete) else "Yes"
