from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar, cast

from django import forms
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import lazy

from nanoweb.lib import images, params
from nanoweb.lib.params import id_of, ids_in
from nanoweb.providers import routing
from nanoweb.providers.models import CatalogueEntry, Options, ProviderAccount
from nanoweb.providers.routing import Need
from nanoweb.quotas.models import quota_bytes
from nanoweb.studio.jobs.spec import JobSpec
from nanoweb.studio.models import GeneratedImage, Generation, GenerationReference, ReferenceImage, SavedPrompt
from nanoweb.studio.references import uploaded_bytes

MAX_PROMPT = 20_000
NOT_OFFERED = "%(value)s is not offered by this model."
T = TypeVar("T")
AUTOMATIC = "auto"


def set_choices(field: forms.Field, choices: list[tuple[str, str]]) -> None:
    cast(forms.ChoiceField, field).choices = choices


class MultipleImageInput(forms.FileInput):
    allow_multiple_selected = True


def too_many_references(limit: int, given: int) -> str:
    if not limit:
        return "This model does not take reference images."
    return f"This model takes at most {limit} reference images; you gave {given}."


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


class MultipleImageField(forms.FileField):
    """Several uploaded images, each checked by its content (Pillow), size and pixel count.

    Cheap checks come first, so that a flood costs nothing to refuse: the number of files
    (against `max_files`, the chosen model's limit), then every file's size, then the pixels
    all of them would decode to (read from their headers), and only then are they decoded."""

    max_files: int | None = None

    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "widget", MultipleImageInput(attrs={"multiple": True, "accept": "image/png,image/jpeg,image/webp"})
        )
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None) -> list[images.CheckedImage]:
        files = [f for f in (data if isinstance(data, list | tuple) else [data]) if f]
        if self.max_files is not None and len(files) > self.max_files:
            raise forms.ValidationError(too_many_references(self.max_files, len(files)))
        for upload in files:
            if upload.size > settings.MAX_UPLOAD_BYTES:
                raise forms.ValidationError(
                    f"{upload.name} is too large ({upload.size / 1024 / 1024:.1f} MB); "
                    f"the limit is {settings.MAX_UPLOAD_BYTES // 1024 // 1024} MB."
                )
        total_bytes = sum(upload.size for upload in files)
        if total_bytes > settings.MAX_REFERENCE_BYTES:
            raise forms.ValidationError(
                f"These images are {megabytes(total_bytes)} together; "
                f"one submission takes at most {megabytes(settings.MAX_REFERENCE_BYTES)}."
            )
        named = [(upload.name, upload.read()) for upload in files]
        total = sum(self._readable(name, images.pixels, data) for name, data in named)
        if total > settings.MAX_UPLOAD_PIXELS:
            raise forms.ValidationError(
                f"These images have {total // 1_000_000} million pixels together; "
                f"one submission takes at most {settings.MAX_UPLOAD_PIXELS // 1_000_000} million."
            )
        return [self._readable(name, images.check, data) for name, data in named]

    @staticmethod
    def _readable(name: str, check: Callable[[bytes], T], data: bytes) -> T:
        try:
            return check(data)
        except images.InvalidImage as exc:
            raise forms.ValidationError(f"{name}: {exc}. Use a PNG, JPEG or WebP image.") from exc


@dataclass(frozen=True)
class Offer:
    """What the form offers for the chosen model: everything some account serving it can do."""

    aspect_ratios: tuple[str, ...] = ()
    resolutions: tuple[str, ...] = ()
    output_formats: tuple[str, ...] = ()
    max_references: int = 0
    google_search: bool = False


def offer_of(rows: list[CatalogueEntry]) -> Offer:
    def union(name: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value for row in rows for value in getattr(row, name)))

    return Offer(
        aspect_ratios=union("aspect_ratios"),
        resolutions=union("resolutions"),
        output_formats=union("output_formats"),
        max_references=max((row.max_references for row in rows), default=0),
        google_search=any(row.google_search for row in rows),
    )


@dataclass(frozen=True)
class FormExtra:
    """A field that a package above the studio adds to the generate form, and what it does with
    the jobs made (boards: "Add to board"). Registered in that package's AppConfig.ready, so that
    the studio never imports it."""

    name: str
    field: Callable[[Any], forms.Field]  # the field for this user (None: a form without one)
    then: Callable[..., object]  # (value, jobs, by=user): inside the submission's transaction


FORM_EXTRAS: list[FormExtra] = []


class NotStarted(Exception):
    """A submission was refused as a whole (its message says why): nothing was started or charged."""


# How a side-by-side submission (one prompt on several models, as one set) starts: registered by
# the batches package, which keeps it as a batch, so that the studio never imports it.
COMPARISONS: list[Callable[..., list[Generation]]] = []


def start_comparison(*, owner: Any, spec: JobSpec, models: list[str]) -> list[Generation]:
    if not COMPARISONS:
        raise NotStarted("Side by side is not available.")
    return COMPARISONS[0](owner=owner, spec=spec, models=models)


class GenerationForm(forms.Form):
    """The studio's request form: a model (by its catalogue name), its options, and how to
    route it. The option lists are those of the catalogue rows serving the chosen model, so
    the same data decides what the page offers, what the server accepts and where it goes."""

    prompt = forms.CharField(
        max_length=MAX_PROMPT,
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "Describe the image you want…"}),
        error_messages={
            "required": "Write a prompt: what should the image show?",
            "max_length": "The prompt is too long: at most %(limit_value)s characters (it has %(show_value)s).",
        },
    )
    model = forms.ChoiceField(error_messages={"required": "Choose a model."})
    routing = forms.ChoiceField(
        label="Account", required=False, help_text="Automatic tries the best account and moves on if it refuses."
    )
    aspect_ratio = forms.ChoiceField(required=False, error_messages={"invalid_choice": NOT_OFFERED})
    resolution = forms.ChoiceField(required=False, error_messages={"invalid_choice": NOT_OFFERED})
    output_format = forms.ChoiceField(required=False, label="Format", error_messages={"invalid_choice": NOT_OFFERED})
    google_search = forms.BooleanField(required=False, label="Ground with Google Search")
    count = forms.TypedChoiceField(
        choices=[(n, str(n)) for n in range(1, 5)], coerce=int, initial=1, label="Images", required=False, empty_value=None,
        error_messages={"invalid_choice": "Choose 1 to 4 images."},
    )  # fmt: skip
    reference_files = MultipleImageField(label="Reference images", required=False)
    reference_results = params.ModelMultipleChoiceField(
        queryset=GeneratedImage.objects.none(), required=False, widget=forms.MultipleHiddenInput,
        error_messages={"invalid_choice": "A chosen earlier result is not available."},
    )  # fmt: skip
    reused_references = forms.ModelMultipleChoiceField(
        queryset=ReferenceImage.objects.none(), required=False, widget=forms.MultipleHiddenInput,
        error_messages={"invalid_choice": "A reference image of the earlier job is not available."},
    )  # fmt: skip
    compare_with = forms.MultipleChoiceField(
        required=False, label="Side by side with", widget=forms.CheckboxSelectMultiple,
        help_text="The same prompt on up to three more models at once, one image each, shown together.",
        error_messages={"invalid_choice": "%(value)s is not available: choose another model."},
    )  # fmt: skip

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user = user
        self.results_field = cast(params.ModelMultipleChoiceField, self.fields["reference_results"])
        self.fields.update((extra.name, extra.field(user)) for extra in FORM_EXTRAS)
        if user is not None:  # any result this user may see can be edited further
            self.results_field.queryset = GeneratedImage.objects.filter(generation__in=Generation.visible(user))
            # "Use this prompt" brings the uploads of a job this user may see (results come as results).
            links = GenerationReference.objects.filter(generation__in=Generation.visible(user))
            cast(
                forms.ModelMultipleChoiceField, self.fields["reused_references"]
            ).queryset = ReferenceImage.objects.filter(pk__in=links.values("reference"), result__isnull=True).exclude(
                file=""
            )
        names = routing.model_names()
        self.model_name = self._value("model")
        if not self.model_name and not self.is_bound:
            self.model_name = self._default_model(names)
        # A name is deprecated when none of its rows is current; those come after the current ones.
        current = set(routing.offered().filter(deprecated=False).values_list("name", flat=True))
        names.sort(key=lambda n: n not in current)
        set_choices(self.fields["model"], [(n, n if n in current else f"{n} (deprecated)") for n in names])
        set_choices(self.fields["compare_with"], [(n, n) for n in names])  # the chosen model itself is ignored
        rows = [
            row for row in routing.offered().filter(name=self.model_name) if not (row.account.paused or row.incomplete)
        ]
        self.accounts = sorted({row.account for row in rows}, key=lambda account: account.name)
        set_choices(self.fields["routing"], [(AUTOMATIC, "Automatic"), *((str(a.pk), a.name) for a in self.accounts)])
        chosen = self._value("routing")
        self.rows = [row for row in rows if str(row.account_id) == chosen] or rows
        pinned = next((account for account in self.accounts if str(account.pk) == chosen), None)
        if pinned:  # a pinned account is said to be one: it has no failover
            self.fields[
                "routing"
            ].help_text = f"Pinned to {pinned.name}: only this account, no failover. Automatic tries the best account."
        if self.is_bound:  # what a refused choice says
            self.fields["model"].error_messages["invalid_choice"] = lazy(self.model_refusal, str)()
            self.fields["routing"].error_messages["invalid_choice"] = lazy(self.routing_refusal, str)(chosen)
        offer = self.offer = offer_of(self.rows)
        # Uploads beyond what any account serving the model takes are refused before decoding.
        cast(MultipleImageField, self.fields["reference_files"]).max_files = offer.max_references
        set_choices(self.fields["aspect_ratio"], [(r, r) for r in offer.aspect_ratios])
        set_choices(self.fields["resolution"], [(r, r) for r in offer.resolutions])
        # "Any" leaves the format to the account that serves the job (so more accounts can).
        set_choices(self.fields["output_format"], [("", "Any"), *((f, f.upper()) for f in offer.output_formats)])
        if offer.aspect_ratios:
            self.fields["aspect_ratio"].initial = "1:1" if "1:1" in offer.aspect_ratios else offer.aspect_ratios[0]
        if offer.resolutions:
            self.fields["resolution"].initial = "1K" if "1K" in offer.resolutions else offer.resolutions[0]
        if not self.is_bound:  # a value the newly chosen model lacks falls back to its default
            self.initial["model"] = self.model_name
            offered = {
                "routing": {AUTOMATIC, *(str(account.pk) for account in self.accounts)},
                "aspect_ratio": set(offer.aspect_ratios),
                "resolution": set(offer.resolutions),
                "output_format": {"", *offer.output_formats},
            }
            for name, values in offered.items():
                if name in self.initial and str(self.initial[name]) not in values:
                    del self.initial[name]

    @staticmethod
    def _default_model(names: list[str]) -> str:
        return "Nano Banana 2" if "Nano Banana 2" in names else (names[0] if names else "")

    def _value(self, name: str) -> str:
        value = self.data.get(name, "") if self.is_bound else self.initial.get(name, "")
        return str(value or "")

    @functools.cached_property
    def deprecation(self) -> str:
        """A warning for a deprecated model that still works (after its shutdown it is refused)."""
        row = next((row for row in self.rows if row.deprecated), None)
        if row is None:
            return ""
        when = f" It shuts down on {row.shutdown_on:%Y-%m-%d}." if row.shutdown_on else ""
        instead = f" Use {row.replacement} instead." if row.replacement else ""
        return f"{row.name} is deprecated: {row.deprecation_note}{when}{instead}"

    def _chosen_options(self) -> Options:
        resolution = self._value("resolution")
        if resolution not in self.offer.resolutions:
            resolution = str(self.fields["resolution"].initial or "")
        return Options(
            aspect_ratio=self._value("aspect_ratio"),
            resolution=resolution,
            output_format=self._value("output_format"),
            google_search=self._value("google_search") in ("on", "true", "True"),
        )

    @property
    def price(self) -> Decimal | None:
        """What the submission chosen so far would cost on the first account to be tried."""
        chosen = self._value("routing")
        need = Need(self.model_name, self._chosen_options(), account=id_of(chosen) if chosen else None)
        rows = routing.candidates(need) or self.rows
        if not rows:
            return None
        count = self._value("count")
        price = rows[0].price(need.options.resolution) * (int(count) if count in {"1", "2", "3", "4"} else 1)
        for name in self.compared()[:3]:  # side by side: one image on each of these models too
            if compared := routing.candidates(Need(name, need.options)):
                price += compared[0].price(need.options.resolution)
        return price

    def compared(self) -> list[str]:
        """The other models chosen for side by side (the chosen model itself does not count)."""
        if self.is_bound:
            values: Any = self.data.getlist("compare_with") if hasattr(self.data, "getlist") else []
        else:
            values = self.initial.get("compare_with") or []
        values = [values] if isinstance(values, str) else values
        return [name for name in dict.fromkeys(values) if name != self.model_name]

    def ways_to_spend_less(self) -> list[str]:
        """What the person could change for a cheaper submission (nothing at the minimum)."""
        ways = []
        if self._value("count") in {"2", "3", "4"}:
            ways.append("fewer images")
        resolution = self._chosen_options().resolution
        if resolution in self.offer.resolutions and self.offer.resolutions.index(resolution) > 0:
            ways.append("a smaller size")
        return ways

    def unoffered_fields_with_errors(self) -> list[forms.BoundField]:
        """Errors on options the page does not show for this model (a tampered or stale form)."""
        offer = self.offer
        offered = {
            "aspect_ratio": offer.aspect_ratios,
            "resolution": offer.resolutions,
            "output_format": offer.output_formats,
            "google_search": offer.google_search,
        }
        return [self[name] for name, shown in offered.items() if not shown and self[name].errors]

    def picked_results(self) -> list[GeneratedImage]:
        """Earlier results chosen as references (for showing them in the form)."""
        field = self["reference_results"]
        ids = ids_in(field.value() or [])
        queryset = self.results_field.queryset
        return list(queryset.filter(pk__in=ids)) if queryset is not None else []

    def reused_shown(self) -> list[tuple[int, str]]:
        """The reused uploads chosen, with an address to show each (through a job it belongs to)."""
        ids = [int(v) for v in (self["reused_references"].value() or []) if str(v).isdigit()]
        queryset = cast(forms.ModelMultipleChoiceField, self.fields["reused_references"]).queryset
        if not ids or queryset is None:
            return []
        links = GenerationReference.objects.filter(reference__in=queryset.filter(pk__in=ids))
        shown = {link.reference_id: reverse("generation_reference", args=[link.generation_id, link.position])
                 for link in links}  # fmt: skip
        return [(pk, shown[pk]) for pk in ids if pk in shown]

    def model_refusal(self) -> str:
        """Why the chosen model cannot be used, in a member's words."""
        name = self.model_name
        shut = CatalogueEntry.objects.filter(name=name, shutdown_on__lte=timezone.localdate()).first()
        if shut:
            instead = f" Use {shut.replacement}." if shut.replacement else ""
            return f"{name} was shut down on {shut.shutdown_on:%Y-%m-%d}.{instead}"
        if routing.offered().filter(name=name).exists():
            return f"Every account serving {name} is paused: ask an admin."
        return f"{name} is not available: choose another model."

    def clean_routing(self) -> int | None:
        chosen = self.cleaned_data.get("routing") or AUTOMATIC
        return None if chosen == AUTOMATIC else int(chosen)

    def routing_refusal(self, chosen: str) -> str:
        """Why a hand-picked account cannot take this job, in a member's words: a paused or disabled
        one is simply not available (why it was paused is for staff)."""
        account = ProviderAccount.objects.filter(pk=id_of(chosen) or 0).first()
        if account and account.enabled and not account.paused:
            return f"{account.name} does not serve {self.model_name}: choose Automatic or another account."
        return "That account is not available: choose Automatic or one of the listed accounts."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "model" in self.errors:  # the options of a model that cannot be used do not matter
            for name in ("routing", "aspect_ratio", "resolution", "output_format", "google_search"):
                self.errors.pop(name, None)
            return cleaned
        offer = self.offer
        references = sum(
            len(cleaned.get(name) or []) for name in ("reference_files", "reference_results", "reused_references")
        )
        if references > offer.max_references:
            self.add_error("reference_files", too_many_references(offer.max_references, references))
        if not offer.google_search and cleaned.get("google_search"):
            self.add_error("google_search", "This model cannot ground with Google Search.")
        if compared := cleaned.get("compare_with"):
            if len(compared) > 3:
                self.add_error("compare_with", "Compare at most four models: this one and three more.")
            if (cleaned.get("count") or 1) > 1:
                self.add_error("count", "Side by side makes one image per model: choose 1 image.")
        if self.errors:
            return cleaned
        if offer.resolutions and not cleaned.get("resolution"):  # the price depends on it
            cleaned["resolution"] = self.fields["resolution"].initial
        uploads = cleaned.get("reference_files") or []
        if uploads and self.user is not None:
            size, used, quota = sum(len(u.data) for u in uploads), uploaded_bytes(self.user), quota_bytes(self.user)
            if used + size > quota:
                self.add_error(
                    "reference_files",
                    f"Your uploaded images take {megabytes(used)} of your {megabytes(quota)}; these need "
                    f"{megabytes(size)} more: use earlier results or smaller images, or ask staff for more room.",
                )
                return cleaned
        need = self.job_spec().need
        if not routing.candidates(need):
            unsupported = {row.unsupported(need.options, need.references) for row in self.rows} - {""}
            if references and all(routing.too_large_inline(row, need.reference_bytes) for row in self.rows):
                limit = min(row.account.adapter_class.max_inline_bytes or 0 for row in self.rows)
                self.add_error(
                    "reference_files",
                    f"These reference images are {megabytes(need.reference_bytes)} together; the accounts "
                    f"serving this model take at most {megabytes(limit)}: send fewer or smaller ones.",
                )
            elif references and not unsupported:
                self.add_error(
                    "reference_files",
                    "No account serving this model can take reference images here: choose another model or ask an admin.",
                )
            else:
                self.add_error(None, f"No account serves {self.model_name} with these options together: change one.")
        return cleaned

    def apply_extras(self, jobs: list[Generation], *, by: Any) -> None:
        """What the extra fields do with the jobs made (call in the transaction that made them)."""
        for extra in FORM_EXTRAS:
            if self.cleaned_data.get(extra.name):
                extra.then(self.cleaned_data[extra.name], jobs, by=by)

    def job_spec(self) -> JobSpec:
        data = self.cleaned_data
        return JobSpec(
            prompt=data["prompt"],
            model_name=data["model"],
            options=Options(data["aspect_ratio"], data["resolution"], data["output_format"], data["google_search"]),
            account=data["routing"],
            count=data.get("count") or 1,
            reference_files=tuple(data.get("reference_files") or ()),
            reference_results=tuple(data.get("reference_results") or ()),
            reused_references=tuple(data.get("reused_references") or ()),
        )


class SavedPromptForm(forms.ModelForm):
    """A preset: the prompt, and optionally the model and options the studio starts with
    when it is used. The option lists are everything some enabled model offers; the studio
    form still checks them against the model when the preset is used."""

    model = forms.ChoiceField(required=False, label="Model", help_text="Leave empty for a prompt alone.")
    aspect_ratio = forms.ChoiceField(required=False)
    resolution = forms.ChoiceField(required=False)
    output_format = forms.ChoiceField(required=False, label="Format")
    google_search = forms.BooleanField(required=False, label="Ground with Google Search")

    class Meta:
        model = SavedPrompt
        fields = ["title", "prompt", "tags", "private"]
        labels = {"private": "Private"}
        widgets = {"prompt": forms.Textarea(attrs={"rows": 4})}
        error_messages = {
            "title": {"required": "Give the preset a title."},
            "prompt": {"required": "Write the prompt."},
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        offer = offer_of(list(routing.offered()))
        choices = {
            "model": routing.model_names(),
            "aspect_ratio": offer.aspect_ratios,
            "resolution": offer.resolutions,
            "output_format": offer.output_formats,
        }
        for name, values in choices.items():
            field = cast(forms.ChoiceField, self.fields[name])
            field.choices = [
                ("", "Any" if name != "model" else "No model"),
                *((v, v.upper() if name == "output_format" else v) for v in values),
            ]
            field.error_messages["invalid_choice"] = "Not offered by any model today: choose one from the list."
        for name in SavedPrompt.CHOICE_NAMES:
            self.initial.setdefault(name, self.instance.choices.get(name, ""))

    def save(self, commit: bool = True) -> SavedPrompt:
        self.instance.choices = {
            name: self.cleaned_data[name] for name in SavedPrompt.CHOICE_NAMES if self.cleaned_data[name]
        }
        return super().save(commit)
