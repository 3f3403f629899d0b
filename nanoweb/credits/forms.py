from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator

from nanoweb.credits.models import Budget
from nanoweb.lib import params

MAX_DAYS = 366


class RangeForm(forms.Form):
    start = params.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = params.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                self.add_error("end", "The end must not be before the start.")
            elif end - start > timedelta(days=MAX_DAYS):
                self.add_error("end", f"Choose at most {MAX_DAYS} days.")
        return cleaned


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = ["amount", "period"]
        error_messages = {
            "amount": {
                "min_value": "A budget cannot be negative.",
                "max_value": "That budget is not plausible (at most %(limit_value)s).",
            },
            "period": {"invalid_choice": "Choose day, week, month or none."},
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and self.instance.amount is not None:  # money: "10.00", not "10.0000"
            self.initial["amount"] = f"{self.instance.amount:.2f}"


class GrantForm(forms.Form):
    """Extra credit for one person this period, with the reason the ledger keeps."""

    amount = forms.DecimalField(
        max_digits=12, decimal_places=4, min_value=Decimal("0.01"),
        error_messages={"required": "Give an amount.", "min_value": "A grant must be positive.",
                        "invalid": "Give an amount such as 5 or 2.50."},
    )  # fmt: skip
    reason = forms.CharField(max_length=300, error_messages={"required": "Say why the credit is given."})


class MemberForm(forms.Form):
    """A new member: they choose their password through a link that works once."""

    username = forms.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = forms.EmailField(required=False, label="Email (optional)")
    is_staff = forms.BooleanField(required=False, label="Staff (runs the team, sees the credits)")

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_username(self) -> str:
        name = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=name).exists():
            raise forms.ValidationError("Someone already has this username.")
        return name
