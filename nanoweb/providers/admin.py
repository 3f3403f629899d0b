from __future__ import annotations

from django import forms
from django.contrib import admin

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
        fields = ["name", "kind", "base_url", "api_key", "enabled"]

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
    list_display = ["name", "kind", "base_url", "enabled", "has_key"]
    list_filter = ["kind", "enabled"]

    @admin.display(boolean=True, description="key set")
    def has_key(self, account: ProviderAccount) -> bool:
        return bool(account.api_key)
