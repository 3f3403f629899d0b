from __future__ import annotations

from django import forms
from django.contrib import admin

from nanoweb.credits.models import Budget, LedgerEntry, TeamBudget


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ["user", "amount", "period", "updated_at"]
    list_editable = ["amount", "period"]
    autocomplete_fields = ["user"]


@admin.register(TeamBudget)
class TeamBudgetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "amount", "period"]

    def has_add_permission(self, request) -> bool:
        return not TeamBudget.objects.exists()


class LedgerEntryForm(forms.ModelForm):
    """Staff add grants and adjustments; every other line is written by the pipeline."""

    kind = forms.ChoiceField(choices=[(LedgerEntry.Kind.GRANT, "Grant"), (LedgerEntry.Kind.ADJUSTMENT, "Adjustment")])

    class Meta:
        model = LedgerEntry
        fields = ["user", "kind", "amount", "reason"]
        help_texts = {"reason": "Required: why the credit is given or corrected."}


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    form = LedgerEntryForm
    list_display = ["created_at", "user", "kind", "amount", "generation", "provider_cost", "reason", "created_by"]
    list_filter = ["kind", "created_at"]
    search_fields = ["user__username", "reason"]
    date_hierarchy = "created_at"
    list_select_related = ["user", "created_by"]

    def save_model(self, request, obj, form, change) -> None:
        obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_view_permission(request)  # the list, never an edit

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
