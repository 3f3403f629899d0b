from django.apps import AppConfig


class BoardsConfig(AppConfig):
    name = "nanoweb.boards"
    label = "boards"
    verbose_name = "Boards"
