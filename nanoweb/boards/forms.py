from __future__ import annotations

from django import forms

from nanoweb.boards.models import Board


class BoardForm(forms.ModelForm):
    class Meta:
        model = Board
        fields = ["name", "private"]
        labels = {"private": "Private (only you and staff see it)"}
        error_messages = {"name": {"required": "Give the board a name."}}

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
