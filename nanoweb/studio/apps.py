import logging

from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "nanoweb.studio"
    label = "studio"
    verbose_name = "Studio"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        post_spawn.connect(wake_on_worker_start, dispatch_uid="nanoweb-wake-sweeper")


def wake_on_worker_start(sender, proc_name, **kwargs) -> None:
    """A starting worker resumes whatever a stopped or killed one left in flight, at once,
    rather than at the reconciler's next minute."""
    from nanoweb.studio import pipeline

    try:
        pipeline.wake_sweeper()
    except Exception:  # the database may not be migrated yet; the reconciler will do it
        logging.getLogger(__name__).exception("could not wake the sweeper")
