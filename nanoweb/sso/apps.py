from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "nanoweb.sso"
    label = "sso"
    verbose_name = "Single sign-on"
