from __future__ import annotations

from django.apps import AppConfig


class BoardsConfig(AppConfig):
    name = "nanoweb.boards"
    label = "boards"
    verbose_name = "Boards"

    def ready(self) -> None:
        from nanoweb.boards.forms import ONTO_BOARD
        from nanoweb.studio.forms import FORM_EXTRAS

        if ONTO_BOARD not in FORM_EXTRAS:
            FORM_EXTRAS.append(ONTO_BOARD)
