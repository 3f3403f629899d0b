from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone

from nanoweb.api.models import EVENTS, ApiToken, WebhookEndpoint
from nanoweb.lib import http


class TokenForm(forms.Form):
    name = forms.CharField(max_length=80, error_messages={"required": "Name the token: what will use it?"})
    scope = forms.ChoiceField(choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ)
    expires_on = forms.DateField(
        required=False, label="Expires on", help_text="Leave empty for a token that does not expire.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_expires_on(self):
        day = self.cleaned_data["expires_on"]
        if day and day <= timezone.localdate():
            raise forms.ValidationError("Choose a day after today.")
        return day


class WebhookForm(forms.Form):
    url = forms.URLField(
        max_length=500, label="URL", assume_scheme="https",
        error_messages={"required": "Give the URL to send events to.", "invalid": "Give a full http(s) URL."},
    )  # fmt: skip
    events = forms.MultipleChoiceField(
        choices=[(event, event) for event in EVENTS], widget=forms.CheckboxSelectMultiple, initial=list(EVENTS),
        error_messages={"required": "Choose at least one event."},
    )  # fmt: skip
    team = forms.BooleanField(required=False, label="Every job and batch of the team (staff only)")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user = user
        if not user.is_staff:
            del self.fields["team"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            http.check_address(url)
        except http.BlockedAddress:
            raise forms.ValidationError(
                "This URL is on a private or local address, which nanoweb does not send to: use a public address."
            ) from None
        except http.OutboundError as exc:
            raise forms.ValidationError(f"This URL cannot be reached: {exc}") from None
        return url

    def save(self) -> WebhookEndpoint:
        return WebhookEndpoint.objects.create(
            owner=self.user, url=self.cleaned_data["url"], events=self.cleaned_data["events"],
            team=bool(self.cleaned_data.get("team")),
        )  # fmt: skip
