"""The team's shared history: who may see what, search and filters, one page at a time."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from nanoweb.providers.models import CatalogueEntry, ProviderAccount
from nanoweb.studio.models import Favorite, Generation

PAGE_SIZE = 30


class FeedFilters(forms.Form):
    """Everything here lives in the URL, so a search survives a reload and can be shared."""

    q = forms.CharField(
        required=False, max_length=200, label="Search prompts", widget=forms.TextInput(attrs={"type": "search"})
    )
    view = forms.ChoiceField(
        required=False, choices=[("team", "Team"), ("mine", "Mine"), ("favorites", "Favourites")], label="Show"
    )
    person = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        to_field_name="username",
        empty_label="Anyone",
    )
    provider = forms.ModelChoiceField(
        queryset=ProviderAccount.objects.order_by("name"), required=False, empty_label="Any provider"
    )
    model = forms.ChoiceField(required=False, label="Model")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Generation.Status.choices])
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    edits = forms.BooleanField(required=False, label="Edits only")
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        names = CatalogueEntry.objects.order_by("name").values_list("name", flat=True).distinct()
        cast(forms.ChoiceField, self.fields["model"]).choices = [("", "Any model"), *((name, name) for name in names)]

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end must not be before the start.")
        return cleaned

    def results(self, user) -> QuerySet:
        """The matching generations this user may see, newest first (empty if the filters are invalid)."""
        if not self.is_valid():
            return Generation.objects.none()
        data = self.cleaned_data
        found = Generation.visible(user)
        for word in data["q"].split():
            found = found.filter(prompt__icontains=word)
        if data["view"] == "mine":
            found = found.filter(owner=user)
        elif data["view"] == "favorites":
            found = found.filter(favorites__user=user)
        if data["person"]:
            found = found.filter(owner=data["person"])
        if data["provider"]:
            found = found.filter(account=data["provider"])
        if data["model"]:
            found = found.filter(model_name=data["model"])
        if data["status"]:
            found = found.filter(status=data["status"])
        if data["since"]:
            found = found.filter(created_at__date__gte=data["since"])
        if data["until"]:
            found = found.filter(created_at__date__lte=data["until"])
        if data["edits"]:
            found = found.filter(reference_links__isnull=False).distinct()
        if data["before"]:
            found = found.filter(pk__lt=data["before"])
        return found.select_related("owner", "account").prefetch_related("images").order_by("-pk")


def page(filters: FeedFilters, user) -> tuple[list[Generation], int | None]:
    """One page of results, and the cursor for the next page (None at the end)."""
    rows = list(filters.results(user)[: PAGE_SIZE + 1])
    jobs = rows[:PAGE_SIZE]
    # Stars for this page only: as a per-row subquery, PostgreSQL would evaluate it for
    # every match before applying the limit.
    starred = set(Favorite.objects.filter(user=user, generation__in=jobs).values_list("generation_id", flat=True))
    for job in jobs:
        job.starred = job.pk in starred
    return jobs, (rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None)
