from __future__ import annotations

from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "nanoweb.batches"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from nanoweb.batches import events as batch_events
        from nanoweb.studio import events
        from nanoweb.studio.forms import COMPARISONS

        events.job_ended.connect(batch_events.job_ended)

        if compare_as_jobs not in COMPARISONS:
            COMPARISONS.append(compare_as_jobs)


def compare_as_jobs(**submission) -> list:
    """The studio's side by side: a batch of one prompt on several models, as its jobs."""
    from nanoweb.batches.service import compare
    from nanoweb.studio.models import Generation

    return list(Generation.objects.filter(batch_item__batch=compare(**submission)).order_by("pk"))
