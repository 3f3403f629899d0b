"""django-q2's `qcluster`, made to stop within seconds when a signal reaches its whole process
group (Ctrl-C in a terminal, a process manager stopping the group)."""

from __future__ import annotations

import signal

from django_q.management.commands import qcluster


class Command(qcluster.Command):
    """Stock, a SIGTERM to the group kills the cluster's sentinel while it waits on an event, and
    the main process, stopping the cluster, then waits forever for the dead sentinel to wake.

    Here the sentinel, and the pusher and monitor it starts, begin with SIGTERM blocked (a blocked
    signal stays blocked across fork; django-q2 only resets its handler), so the main process
    alone acts on it, stopping the cluster in order. Each worker unblocks it as it starts
    (`studio.apps.stop_with_the_group`), so a signal to the group ends the workers at once:
    what they held resumes as after a crash. A SIGTERM to the main process alone still lets
    the workers finish their tasks."""

    def handle(self, *args, **options):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            super().handle(*args, **options)  # returns once the cluster runs
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
