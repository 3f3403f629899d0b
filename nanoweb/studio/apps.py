import logging
import threading

from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "nanoweb.studio"
    label = "studio"
    verbose_name = "Studio"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from nanoweb.lib.images import limit_heap_growth

        limit_heap_growth()
        post_spawn.connect(wake_on_worker_start, dispatch_uid="nanoweb-wake-sweeper")


def wake_on_worker_start(sender, proc_name, **kwargs) -> None:
    """A starting worker resumes what a stopped or killed one left in flight within
    seconds, rather than at the reconciler's next minute."""
    threading.Thread(target=_resume, name="nanoweb-resume", daemon=True).start()


def _resume() -> None:
    from nanoweb.studio import pipeline

    try:
        pipeline.wake_when_lease_lapses()
    except Exception:  # the database may not be migrated yet; the reconciler will do it
        logging.getLogger(__name__).exception("could not resume the pipeline")
