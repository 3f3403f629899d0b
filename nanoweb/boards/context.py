from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from nanoweb.boards.models import Board


def board_choices(request: HttpRequest) -> dict[str, object]:
    """Context for every page: the boards this person may put results on, for the board menus of
    cards, the lightbox, the selection bar and the detail page (read only by a page that shows one)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"board_choices": SimpleLazyObject(lambda: list(Board.visible(user)))}
