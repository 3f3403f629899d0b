from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "nanoweb.api"
    label = "api"
    verbose_name = "API and webhooks"

    def ready(self) -> None:
        from nanoweb.api import webhooks
        from nanoweb.batches import events as batch_events
        from nanoweb.studio import events

        events.job_ended.connect(webhooks.job_ended)
        batch_events.batch_finished.connect(webhooks.batch_finished)
