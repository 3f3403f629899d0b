from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "nanoweb.quotas"
    label = "quotas"
    verbose_name = "Storage quotas"
