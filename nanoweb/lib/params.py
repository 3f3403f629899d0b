"""Numbers and dates taken from a request, bounded: what the database and `datetime` can hold.

An id beyond a 64-bit integer overflows SQLite and PostgreSQL alike, and a date at either end
of the calendar overflows as soon as a day is added; such a value is no id or date at all.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import QuerySet

MAX_DIGITS = 18  # below 2**63 - 1, the largest id the database holds
FIRST_DAY = datetime.date(1900, 1, 1)
LAST_DAY = datetime.date(2999, 12, 31)


def id_of(value: object) -> int | None:
    """`value` as a row id, or None if it cannot be one (not plain ASCII digits, or too long)."""
    text = str(value)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS else None


def ids_in(values: Iterable[object]) -> list[int]:
    return [pk for pk in map(id_of, values) if pk is not None]


class DateField(forms.DateField):
    """A date within FIRST_DAY and LAST_DAY, refused with that message otherwise."""

    def __init__(self, **kwargs: object) -> None:
        message = f"Give a date between {FIRST_DAY:%Y-%m-%d} and {LAST_DAY:%Y-%m-%d}."
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.validators += [MinValueValidator(FIRST_DAY, message), MaxValueValidator(LAST_DAY, message)]


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Rows chosen by id; a value that cannot be an id is an invalid choice before any query."""

    def clean(self, value: Any) -> QuerySet:
        for pk in value if isinstance(value, list | tuple) else ():
            if id_of(pk) is None:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice", params={"value": pk}
                )
        return super().clean(value)
