"""Run the whole studio in the foreground: web server, workers and the provider simulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Start the web server, the django-q workers and the provider simulator; Ctrl-C stops all. "
        "With --production: gunicorn on all interfaces and the workers, no simulator."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--production", action="store_true")

    def handle(self, *args, port: int, production: bool, **options):
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        web = [python, manage, "runserver", f"127.0.0.1:{port}", "--noreload"]
        if production:
            web = [python, "-m", "gunicorn", "nanoweb.wsgi:application", "--bind", f"0.0.0.0:{port}",
                   "--workers", os.environ.get("WEB_CONCURRENCY", "4"), "--access-logfile", "-"]  # fmt: skip
        commands = {"web": web, "workers": [python, manage, "qcluster"]}
        if not production:
            sim_port = settings.SIMULATOR_URL.rsplit(":", 1)[-1].strip("/")
            commands["simulator"] = [python, "-m", "nanoweb.providers.simulator", "--port", sim_port]
        processes = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR) for name, cmd in commands.items()}
        self.stdout.write(
            self.style.SUCCESS(f"\n  nanoweb is running at http://127.0.0.1:{port}/  (Ctrl-C stops it)\n")
        )
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with code {process.returncode}; stopping the rest.")
                    stopping = True
            time.sleep(0.3)
        for process in processes.values():
            if process.poll() is None:
                process.terminate()  # the cluster finishes its running tasks on SIGTERM
        deadline = time.monotonic() + 10
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
