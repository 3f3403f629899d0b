"""The team's shared history (the gallery, and each board): who may see what, search,
filters and order, one page at a time.

A listing is a few groups in order (search: every word, then some; "my rating": five
stars, then four, ...), each read newest first through an index (`lib/paging.py`), so a
page costs the same at ten thousand rows as at a million. The cursor names a group and the
last generation seen in it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import RegexValidator
from django.db.models import Exists, F, OuterRef, Prefetch, QuerySet, prefetch_related_objects
from django.utils import timezone

from nanoweb.lib import paging, params, search
from nanoweb.providers.models import CatalogueEntry, ProviderAccount
from nanoweb.studio.models import GeneratedImage, Generation, GenerationReference, Rating

PAGE_SIZE = 30
STAR_CHOICES = [("", "Any"), *((str(n), "★" * n + (" and up" if n < 5 else "")) for n in range(5, 0, -1))]


class FeedFilters(forms.Form):
    """Everything here lives in the URL, so a search survives a reload and can be shared."""

    q = forms.CharField(
        required=False, max_length=200, label="Search prompts", widget=forms.TextInput(attrs={"type": "search"}),
        help_text='Words find their beginnings ("light" finds lighthouse); "quotes" find a phrase.',
    )  # fmt: skip
    view = forms.ChoiceField(required=False, choices=[("team", "Team"), ("mine", "Mine")], label="Show")
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
    # What failed, was canceled or still runs is its owner's business: one sees one's own.
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Done"), ("failed", "Failed (mine)"), ("canceled", "Canceled (mine)"), ("running", "Running (mine)")],
    )  # fmt: skip
    since = params.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = params.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    stars = forms.ChoiceField(required=False, choices=STAR_CHOICES, label="My rating")
    order = forms.ChoiceField(
        required=False, choices=[("", "Best match"), ("newest", "Newest"), ("stars", "My rating")], label="Order"
    )
    edits = forms.BooleanField(required=False, label="Edits only")
    before = forms.CharField(
        required=False, max_length=24, widget=forms.HiddenInput, validators=[RegexValidator(r"^\d{1,2}\.\d{1,19}$")]
    )

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

    def groups(self, user, among: QuerySet | None = None) -> list[QuerySet]:
        """The matching generations this user may see (of `among`, by default all of them),
        as groups in order of relevance; none if the filters are invalid."""
        if not self.is_valid():
            return []
        data = self.cleaned_data
        found = Generation.visible(user) if among is None else among
        if data["view"] == "mine":
            found = found.filter(owner=user)
        if data["person"]:
            found = found.filter(owner=data["person"])
        if data["provider"]:
            found = found.filter(account=data["provider"])
        if data["model"]:
            found = found.filter(model_name=data["model"])
        # The team's finished images by default; what failed, was canceled or still runs is its owner's business.
        if not data["status"]:
            found = found.filter(status=Generation.Status.SUCCEEDED)
        elif data["status"] == "running":
            found = found.filter(owner=user).exclude(status__in=Generation.TERMINAL)
        else:
            found = found.filter(owner=user, status=data["status"])
        if data["since"]:
            found = found.filter(created_at__gte=start_of(data["since"]))
        if data["until"]:
            found = found.filter(created_at__lt=start_of(data["until"] + datetime.timedelta(days=1)))
        if data["edits"]:
            found = found.filter(Exists(GenerationReference.objects.filter(generation=OuterRef("pk"))))
        least = int(data["stars"] or 0)
        if data["order"] == "stars":
            groups = [
                rated(found.filter(ratings__user=user, ratings__stars=n)) for n in range(5, max(least, 1) - 1, -1)
            ]
            if not least:
                groups.append(found.exclude(Exists(Rating.objects.filter(user=user, generation=OuterRef("pk")))))
            return [search.matching(group, "prompt", data["q"]) for group in groups]
        if least:
            found = rated(found.filter(ratings__user=user, ratings__stars__gte=least))
        if data["order"] == "newest":
            return [search.matching(found, "prompt", data["q"])]
        return search.ranked(found, "prompt", data["q"])

    def cursor(self) -> tuple[int, int | None]:
        if not (self.is_valid() and self.cleaned_data["before"]):
            return 0, None
        group, _, pk = self.cleaned_data["before"].partition(".")
        return int(group), int(pk)


def rated(found: QuerySet) -> QuerySet:
    """Read through the person's ratings (few, and indexed) rather than every generation."""
    return paging.read_by(found, F("ratings__generation"))


def start_of(day: datetime.date) -> datetime.datetime:
    """The first instant of a day in the current time zone (a range the index can use)."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def page(filters: FeedFilters, user, among: QuerySet | None = None) -> tuple[list[Generation], str | None]:
    """One page of results, and the cursor for the next page (None at the end)."""
    groups = filters.groups(user, among)
    start, before = filters.cursor()
    rows: list[tuple[int, Generation]] = []
    for number in range(start, len(groups)):
        group = paging.newest_first(groups[number]).select_related("owner", "account")
        if number == start and before:
            group = paging.older_than(group, before)
        rows += [(number, job) for job in group[: PAGE_SIZE + 1 - len(rows)]]
        if len(rows) > PAGE_SIZE:
            break
    jobs = [job for _, job in rows[:PAGE_SIZE]]
    decorate(jobs, user)
    if len(rows) <= PAGE_SIZE:
        return jobs, None
    last_group, last = rows[PAGE_SIZE - 1]
    return jobs, f"{last_group}.{last.pk}"


@dataclass
class Stars:
    """A result's ratings as one person sees them: their own, and the team's average."""

    mine: int = 0
    average: float | None = None
    count: int = 0


def decorate(jobs: list[Generation], user) -> None:
    """Images and ratings for these results, in two queries whatever their number.
    (Per-row subqueries for ratings would run for every match before the limit.)"""
    # Ordered by the image's own columns: the model's ordering would join the generation again.
    prefetch_related_objects(jobs, Prefetch("images", GeneratedImage.objects.order_by("generation_id", "index")))
    ratings = Rating.objects.filter(generation__in=jobs).values_list("generation_id", "user_id", "stars")
    by_job: dict[int, list[tuple[int, int]]] = {}
    for generation_id, user_id, stars in ratings:
        by_job.setdefault(generation_id, []).append((user_id, stars))
    for job in jobs:
        given = by_job.get(job.pk, [])
        mine = next((stars for rater, stars in given if rater == user.pk), 0)
        average = sum(stars for _, stars in given) / len(given) if given else None
        job.stars = Stars(mine=mine, average=average, count=len(given))
