from __future__ import annotations

from typing import Any, cast

from django import forms

from nanoweb.batches.rows import MAX_FILE_BYTES, MAX_ROWS
from nanoweb.boards.models import Board
from nanoweb.providers import routing
from nanoweb.studio.forms import offer_of


class BatchForm(forms.Form):
    """A list of prompts: pasted, one a line, or a CSV file; the page's model and options
    apply where a row does not say. After the preview the page sends the same text back
    (`source`, `mode`) to run it."""

    prompts = forms.CharField(
        required=False, label="Prompts, one a line",
        widget=forms.Textarea(attrs={"rows": 8, "placeholder": "A lighthouse at dawn\nThe same lighthouse at night"}),
    )  # fmt: skip
    file = forms.FileField(
        required=False, label="…or a CSV file",
        help_text="Columns: prompt, and optionally model, aspect_ratio, resolution, format, count (1-4), board, "
        f"references (numbers of earlier results). Up to {MAX_ROWS} rows.",
    )  # fmt: skip
    model = forms.ChoiceField(label="Model", help_text="For rows that do not name one.")
    aspect_ratio = forms.ChoiceField(required=False, label="Aspect ratio")
    resolution = forms.ChoiceField(required=False)
    output_format = forms.ChoiceField(required=False, label="Format")
    board = forms.ModelChoiceField(
        queryset=Board.objects.none(), required=False, empty_label="None", label="Put the results on a board",
        error_messages={"invalid_choice": "That board is not available: choose another."},
    )  # fmt: skip
    cheaper = forms.BooleanField(
        required=False, label="Cheaper, within a day",
        help_text="Through Google's Batch API at half the price: results arrive within 24 hours (often sooner). "
        "You can cancel until then.",
    )  # fmt: skip
    source = forms.CharField(required=False, widget=forms.HiddenInput)
    mode = forms.ChoiceField(
        required=False, choices=[("", ""), ("lines", "lines"), ("csv", "csv")], widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        names = routing.model_names()
        cast(forms.ChoiceField, self.fields["model"]).choices = [(n, n) for n in names]
        if "Nano Banana 2.1" in names:
            self.fields["model"].initial = "Nano Banana 2.1"
        offer = offer_of(list(routing.offered()))
        for name, values in (("aspect_ratio", offer.aspect_ratios), ("resolution", offer.resolutions),
                             ("output_format", offer.output_formats)):  # fmt: skip
            cast(forms.ChoiceField, self.fields[name]).choices = [
                ("", "The model's default"),
                *((v, v) for v in values),
            ]
        if user is not None:
            cast(forms.ModelChoiceField, self.fields["board"]).queryset = Board.visible(user)

    def clean_file(self) -> Any:
        upload = self.cleaned_data.get("file")
        if upload is not None and upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(f"The file is too large: at most {MAX_FILE_BYTES // (1024 * 1024)} MB.")
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        given = [bool(cleaned.get("prompts", "").strip()), cleaned.get("file") is not None, bool(cleaned.get("source"))]
        if sum(given) == 0:
            raise forms.ValidationError("Paste prompts (one a line) or choose a CSV file.")
        if given[0] and given[1]:
            raise forms.ValidationError("Paste prompts or choose a file, not both.")
        return cleaned
