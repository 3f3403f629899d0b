from __future__ import annotations

from django import forms

from nanoweb.boards import items
from nanoweb.boards.models import Board
from nanoweb.studio.forms import FormExtra


class BoardForm(forms.ModelForm):
    class Meta:
        model = Board
        fields = ["name", "private"]
        labels = {"private": "Private (only you and staff see it)"}
        error_messages = {"name": {"required": "Give the board a name."}}

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def board_field(user) -> forms.ModelChoiceField:
    """The studio form's "Add to board": new results are one's own, so any board one sees."""
    return forms.ModelChoiceField(
        queryset=Board.visible(user) if user is not None else Board.objects.none(), required=False,
        empty_label="None", label="Add to board",
        error_messages={"invalid_choice": "That board is not available: choose another."},
    )  # fmt: skip


ONTO_BOARD = FormExtra(name="board", field=board_field, then=items.add)
