from __future__ import annotations

from datetime import timedelta

from django import forms

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
