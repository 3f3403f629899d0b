from __future__ import annotations

from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "nanoweb.batches"
    default_auto_field = "django.db.models.BigAutoField"
