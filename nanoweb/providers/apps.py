from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "nanoweb.providers"
    label = "providers"
    verbose_name = "Providers"
