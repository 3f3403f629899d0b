"""Run the whole studio in the foreground: web server, workers and the provider simulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


def address(bind: str, port: int) -> str:
    return f"[{bind}]:{port}" if ":" in bind and not bind.startswith("[") else f"{bind}:{port}"


def web_server(*, bind: str, port: int, production: bool) -> list[str]:
    """gunicorn with threads (whitenoise serves the static files), as both modes run it."""
    command = [
        sys.executable, "-m", "gunicorn", "nanoweb.wsgi:application", "--bind", address(bind, port),
        "--worker-class", "gthread", "--workers", os.environ.get("WEB_CONCURRENCY", "2"),
        "--threads", os.environ.get("WEB_THREADS", "8"), "--graceful-timeout", "5",
        "--no-control-socket",  # one per user by default: two studios on a host would share it
    ]  # fmt: skip
    return command + ["--access-logfile", "-"] if production else command


class Command(BaseCommand):
    help = (
        "Start the web server (gunicorn), the django-q workers and the provider simulator; Ctrl-C "
        "stops all. With --production: no simulator, and an access log."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--bind",
            default=os.environ.get("BIND", "127.0.0.1"),
            help="Address to listen on (default 127.0.0.1, or $BIND): put a reverse proxy in front.",
        )
        parser.add_argument("--production", action="store_true")

    def handle(self, *args, port: int, bind: str, production: bool, **options):
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        web = web_server(bind=bind, port=port, production=production)
        commands = {"web": web, "workers": [python, manage, "qcluster"]}
        if not production:
            sim_port = settings.SIMULATOR_URL.rsplit(":", 1)[-1].strip("/")
            commands["simulator"] = [python, "-m", "nanoweb.providers.simulator", "--port", sim_port]
        processes = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR) for name, cmd in commands.items()}
        self.stdout.write(
            self.style.SUCCESS(f"\n  nanoweb is running at http://{address(bind, port)}/  (Ctrl-C stops it)\n")
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
