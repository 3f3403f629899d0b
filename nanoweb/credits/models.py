from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

MONEY: dict[str, Any] = {"max_digits": 14, "decimal_places": 4}
MAX_BUDGET = Decimal("1000000")


class Period(models.TextChoices):
    DAY = "day", "per day"
    WEEK = "week", "per week"
    MONTH = "month", "per month"
    NONE = "none", "in total (no reset)"


class Allowance(models.Model):
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal(0)), MaxValueValidator(MAX_BUDGET)])
    period = models.CharField(max_length=5, choices=Period.choices, default=Period.MONTH)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Budget(Allowance):
    """How much a person may spend per period. People without one get the default budget."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="budget")

    def __str__(self) -> str:
        return f"{self.user}: {self.amount} {self.get_period_display()}"


class TeamBudget(Allowance):
    """An optional cap on the whole team's spending per period (at most one row)."""

    def __str__(self) -> str:
        return f"Team: {self.amount} {self.get_period_display()}"


class LedgerEntry(models.Model):
    """One credit movement. Append-only: never updated, never deleted."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        RESERVE = "reserve", "Reserve"
        SETTLE = "settle", "Charge"
        RELEASE = "release", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Positive, except adjustments, which may take credit away.
    amount = models.DecimalField(**MONEY)
    generation = models.ForeignKey(
        "studio.Generation", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger"
    )
    reason = models.CharField(max_length=300, blank=True)
    provider_cost = models.CharField(max_length=40, blank=True, help_text="As the provider reported it, in its unit.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["user", "created_at"]), models.Index(fields=["kind", "created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="adjustment") | models.Q(amount__gte=0), name="only_adjustments_negative"
            ),
            models.CheckConstraint(
                condition=~models.Q(kind__in=["reserve", "settle", "release"]) | models.Q(generation__isnull=False),
                name="job_lines_name_their_job",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} ({self.user})"

    def clean(self) -> None:
        """The rules for lines staff write (the pipeline's own lines follow from prices)."""
        if self.kind in (self.Kind.GRANT, self.Kind.ADJUSTMENT):
            errors = {}
            if not self.reason.strip():
                errors["reason"] = "Say why the credit is given or corrected."
            if self.amount is not None:
                if self.kind == self.Kind.GRANT and self.amount <= 0:
                    errors["amount"] = "A grant must be positive; use an adjustment to take credit away."
                elif self.amount == 0:
                    errors["amount"] = "An amount of zero changes nothing."
                elif abs(self.amount) > MAX_BUDGET:
                    errors["amount"] = "That amount is not plausible."
            if errors:
                raise ValidationError(errors)

    def save(self, *args, **kwargs):
        if self.pk:
            raise ValueError("ledger entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("ledger entries are append-only")
