import logging
import signal
import threading

from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "nanoweb.studio"
    label = "studio"
    verbose_name = "Studio"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate
        from django_q.signals import post_spawn

        from nanoweb.lib import search
        from nanoweb.lib.images import limit_heap_growth

        limit_heap_growth()
        post_spawn.connect(stop_with_the_group, dispatch_uid="nanoweb-stop-with-the-group")
        post_spawn.connect(wake_on_worker_start, dispatch_uid="nanoweb-wake-sweeper")
        # A migration that rebuilds a searched table on SQLite drops its search triggers.
        post_migrate.connect(search.repair_after_migrate, dispatch_uid="nanoweb-search-repair")


def stop_with_the_group(sender, proc_name, **kwargs) -> None:
    """In a starting worker: SIGTERM or SIGINT to the cluster's process group ends it at once
    (its sentinel passed SIGTERM down blocked and SIGINT ignored; see the qcluster command)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wake_on_worker_start(sender, proc_name, **kwargs) -> None:
    """A starting worker resumes what a stopped or killed one left in flight within
    seconds, rather than at the reconciler's next minute."""
    threading.Thread(target=_resume, name="nanoweb-resume", daemon=True).start()


def _resume() -> None:
    from nanoweb.studio.jobs import sweep

    try:
        sweep.wake_when_lease_lapses()
    except Exception:  # the database may not be migrated yet; the reconciler will do it
        logging.getLogger(__name__).exception("could not resume the pipeline")
