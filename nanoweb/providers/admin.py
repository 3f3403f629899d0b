from __future__ import annotations

from django import forms
from django.contrib import admin

from nanoweb.providers import status
from nanoweb.providers.models import ProviderAccount


class ProviderAccountForm(forms.ModelForm):
    """The API key is write-only: the field is always rendered empty; empty keeps the old key."""

    base_url = forms.URLField(assume_scheme="https", help_text=ProviderAccount._meta.get_field("base_url").help_text)
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the current key.",
    )

    class Meta:
        model = ProviderAccount
        fields = ["name", "kind", "base_url", "api_key", "enabled", "rate_limit"]

    def clean_api_key(self) -> str:
        key = self.cleaned_data["api_key"].strip()
        if key:
            return key
        if self.instance.pk:
            return self.instance.api_key
        raise forms.ValidationError("A new account needs an API key.")


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ["name", "kind", "enabled", "has_key", "balance", "completion", "errors_24h"]
    list_filter = ["kind", "enabled"]
    readonly_fields = ["balance", "completion", "errors_24h"]

    @admin.display(boolean=True, description="key set")
    def has_key(self, account: ProviderAccount) -> bool:
        return bool(account.api_key)

    @admin.display(description="balance (vendor's unit)")
    def balance(self, account: ProviderAccount) -> str:
        return status.balance(account) if account.pk else "—"

    @admin.display(description="completion")
    def completion(self, account: ProviderAccount) -> str:
        return status.completion_mode(account) if account.pk else "—"

    @admin.display(description="failures, last 24 h")
    def errors_24h(self, account: ProviderAccount) -> str:
        errors = status.recent_errors(account) if account.pk else {}
        return ", ".join(f"{kind or 'unknown'}: {n}" for kind, n in errors.items()) or "none"
