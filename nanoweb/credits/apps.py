from django.apps import AppConfig


class CreditsConfig(AppConfig):
    name = "nanoweb.credits"
    label = "credits"
    verbose_name = "Credits"
