from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "nanoweb.studio"
    label = "studio"
    verbose_name = "Studio"
