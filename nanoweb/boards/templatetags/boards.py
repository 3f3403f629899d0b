"""What boards add to the pages of the studio (its cards, detail page and gallery), so that the
studio's code never imports boards: the board menu, the boards a result is on, and who may take
a result off a board."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from nanoweb.boards import items
from nanoweb.boards.models import Board
from nanoweb.lib import search

register = template.Library()
MATCHING_SHOWN = 6  # boards named beside a gallery search: a handful of names


@register.simple_tag
def board_options(choices: Iterable[Board], selected: Any = "") -> SafeString:
    """The `<option>`s of a board menu (the boards one may see: `board_choices`), `selected` chosen,
    and last "New board…" (chosen when there is no board yet: its name is asked beside the menu)."""
    choices = list(choices)
    existing = format_html_join(
        "",
        '<option value="{}"{}>{}{}</option>',
        (
            (board.pk, " selected" if str(board.pk) == str(selected) else "", board.name,
             " (private)" if board.private else "")
            for board in choices
        ),
    )  # fmt: skip
    new = format_html('<option value="new"{}>New board…</option>', "" if choices else mark_safe(" selected"))
    return existing + new


@register.simple_tag(takes_context=True)
def boards_holding(context: template.Context, generation) -> list[tuple[Board, bool]]:
    """The boards this person sees the result on, and whether they may take it off each."""
    return items.holding(generation, context["user"])


@register.simple_tag(takes_context=True)
def may_take_off(context: template.Context, board: Board, generation) -> bool:
    """On a board's page: whether this person may take this result (annotated `added_by_id`) off."""
    return items.may_remove(board, context["user"], generation.added_by_id)


@register.simple_tag(takes_context=True)
def boards_matching(context: template.Context, query: str) -> list[Board]:
    """The boards whose names match a gallery search."""
    if not query.strip():
        return []
    return list(search.matching(Board.visible(context["user"]), "name", query)[:MATCHING_SHOWN])
