from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar, cast

from django import forms
from django.conf import settings

from nanoweb.credits import prices
from nanoweb.lib import images
from nanoweb.providers.base import ModelSpec
from nanoweb.providers.models import ProviderAccount
from nanoweb.studio.models import GeneratedImage, Generation, SavedPrompt

MAX_PROMPT = 20_000
NOT_OFFERED = "%(value)s is not offered by this model."
T = TypeVar("T")


class MultipleImageInput(forms.FileInput):
    allow_multiple_selected = True


def too_many_references(limit: int, given: int) -> str:
    if not limit:
        return "This model does not take reference images."
    return f"This model takes at most {limit} reference images; you gave {given}."


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


class GenerationForm(forms.Form):
    """The studio's request form. Its option lists follow the chosen account and model,
    so the same capabilities decide what the page offers and what the server accepts."""

    prompt = forms.CharField(
        max_length=MAX_PROMPT,
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "Describe the image you want…"}),
        error_messages={
            "required": "Write a prompt: what should the image show?",
            "max_length": "The prompt is too long: at most %(limit_value)s characters (it has %(show_value)s).",
        },
    )
    account = forms.ModelChoiceField(
        queryset=ProviderAccount.objects.filter(enabled=True).order_by("name"),
        label="Provider",
        empty_label=None,
        error_messages={"invalid_choice": "That provider account is not available: choose another."},
    )
    model = forms.ChoiceField(error_messages={"invalid_choice": NOT_OFFERED})
    aspect_ratio = forms.ChoiceField(required=False, error_messages={"invalid_choice": NOT_OFFERED})
    resolution = forms.ChoiceField(required=False, error_messages={"invalid_choice": NOT_OFFERED})
    output_format = forms.ChoiceField(required=False, label="Format", error_messages={"invalid_choice": NOT_OFFERED})
    google_search = forms.BooleanField(required=False, label="Ground with Google Search")
    count = forms.TypedChoiceField(
        choices=[(n, str(n)) for n in range(1, 5)], coerce=int, initial=1, label="Images", required=False, empty_value=1,
        error_messages={"invalid_choice": "Choose 1 to 4 images."},
    )  # fmt: skip
    reference_files = MultipleImageField(label="Reference images", required=False)
    reference_results = forms.ModelMultipleChoiceField(
        queryset=GeneratedImage.objects.none(), required=False, widget=forms.MultipleHiddenInput,
        error_messages={"invalid_choice": "A chosen earlier result is not available."},
    )  # fmt: skip

    def __init__(self, *args, user=None, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        if user is not None:  # any result this user may see can be edited further
            self.fields["reference_results"].queryset = GeneratedImage.objects.filter(
                generation__in=Generation.visible(user)
            )
        self.spec = self._chosen_spec()
        spec = self.spec
        cast(MultipleImageField, self.fields["reference_files"]).max_files = spec.max_references if spec else None
        self.fields["model"].choices = [(m.id, m.label) for m in self._adapter_models()]
        self.fields["aspect_ratio"].choices = [(r, r) for r in spec.aspect_ratios] if spec else []
        self.fields["resolution"].choices = [(r, r) for r in spec.resolutions] if spec else []
        self.fields["output_format"].choices = [(f, f.upper()) for f in spec.output_formats] if spec else []
        if spec and spec.aspect_ratios:
            self.fields["aspect_ratio"].initial = "1:1" if "1:1" in spec.aspect_ratios else spec.aspect_ratios[0]
        if spec and spec.resolutions:
            self.fields["resolution"].initial = "1K" if "1K" in spec.resolutions else spec.resolutions[0]
        if not self.is_bound:  # a value the newly chosen model lacks falls back to its default
            for name in ("model", "aspect_ratio", "resolution", "output_format"):
                offered = {value for value, _ in self.fields[name].choices}
                if name in self.initial and self.initial[name] not in offered:
                    del self.initial[name]

    def _value(self, name: str) -> str:
        value = self.data.get(name, "") if self.is_bound else self.initial.get(name, "")
        return str(value or "")

    @functools.cached_property
    def chosen_account(self) -> ProviderAccount | None:
        accounts = self.fields["account"].queryset
        chosen = self._value("account")
        if chosen.isdigit():
            account = accounts.filter(pk=chosen).first()
            if account or self.is_bound:
                return account
        return accounts.first()

    def _adapter_models(self) -> tuple[ModelSpec, ...]:
        account = self.chosen_account
        return account.adapter_class.models if account else ()

    def _chosen_spec(self) -> ModelSpec | None:
        models = self._adapter_models()
        chosen = self._value("model")
        spec = next((m for m in models if m.id == chosen), None)
        if spec is None and not (self.is_bound and chosen):
            spec = models[0] if models else None
        return spec

    @property
    def price(self):
        """What the submission chosen so far would cost, for the live cost line."""
        account = self.chosen_account
        if account is None or self.spec is None:
            return None
        resolution = self._value("resolution") if self.spec.resolutions else ""
        if resolution not in self.spec.resolutions:
            resolution = self.fields["resolution"].initial or ""
        count = self._value("count")
        images = int(count) if count in {"1", "2", "3", "4"} else 1
        return prices.price_for(account, self.spec.id, resolution) * images

    def unoffered_fields_with_errors(self) -> list[forms.BoundField]:
        """Errors on options the page does not show for this model (a tampered or stale form)."""
        spec = self.spec
        offered = {
            "aspect_ratio": spec and spec.aspect_ratios,
            "resolution": spec and spec.resolutions,
            "output_format": spec and spec.output_formats,
            "google_search": spec and spec.google_search,
        }
        return [self[name] for name, shown in offered.items() if not shown and self[name].errors]

    @property
    def references_need_public_url(self) -> bool:
        """This provider fetches references by URL, and there is no public address to give it."""
        account = self.chosen_account
        return bool(account) and not account.adapter_class.inline_references and not settings.PUBLIC_BASE_URL

    def picked_results(self) -> list[GeneratedImage]:
        """Earlier results chosen as references (for showing them in the form)."""
        field = self["reference_results"]
        ids = [v for v in (field.value() or []) if str(v).isdigit()]
        return list(self.fields["reference_results"].queryset.filter(pk__in=ids))

    def clean(self):
        cleaned = super().clean()
        spec = self.spec
        if spec is None:
            return cleaned
        count = len(cleaned.get("reference_files") or []) + len(cleaned.get("reference_results") or [])
        if count > spec.max_references:
            self.add_error("reference_files", too_many_references(spec.max_references, count))
        elif count and self.references_need_public_url:
            self.add_error(
                "reference_files",
                "This provider fetches reference images from a public address, and none is set: "
                "ask an admin to set PUBLIC_BASE_URL, or use the Gemini API, which takes them inline.",
            )
        if not spec.google_search and cleaned.get("google_search"):
            self.add_error("google_search", "This model cannot ground with Google Search.")
        # Fields a model does not have stay empty, whatever a tampered form sent.
        for name, offered in (
            ("aspect_ratio", spec.aspect_ratios),
            ("resolution", spec.resolutions),
            ("output_format", spec.output_formats),
        ):
            if offered and not cleaned.get(name):
                cleaned[name] = self.fields[name].initial or offered[0]
        return cleaned


class SavedPromptForm(forms.ModelForm):
    class Meta:
        model = SavedPrompt
        fields = ["title", "prompt", "tags"]
        widgets = {"prompt": forms.Textarea(attrs={"rows": 4})}
        error_messages = {
            "title": {"required": "Give the prompt a title."},
            "prompt": {"required": "Write the prompt."},
        }
