"""Load benchmark: gunicorn in production mode under 50 concurrent users (wrk), on SQLite or PostgreSQL.

    .venv/bin/python bench/load.py                                          # SQLite
    .venv/bin/python -m tests.services postgres -- .venv/bin/python bench/load.py  # PostgreSQL

Seeds 10,000 generations (bench/gallery.py's seeder), signs a user in, and runs wrk (Debian's
package) for 15 s against the status fragment of a running job and the gallery page, with a
50-connection pool. wrk's Lua hook reports p95. The figures come last, as one line.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.services import free_port  # noqa: E402

REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p95_ms=%.1f errors=%d\\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(95) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
"""


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    data = Path(tempfile.mkdtemp(prefix="nanoweb-load-"))
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1",
           "NANOWEB_DATA_DIR": str(data), "STATIC_ROOT": str(data / "static"), "LOG_LEVEL": "WARNING"}  # fmt: skip
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanoweb.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    from bench.gallery import seed
    from nanoweb.studio.models import Generation

    if not Generation.objects.exists():
        seed(10_000)
    user = get_user_model().objects.get(username="person1")
    session = SessionStore()
    session["_auth_user_id"], session["_auth_user_backend"] = str(user.pk), settings.AUTHENTICATION_BACKENDS[-1]
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    running = Generation.objects.filter(owner=user).first()
    Generation.objects.filter(pk=running.pk).update(status="running", private=False)
    vendor = connection.vendor
    connection.close()

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "nanoweb.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "4", "--threads", "2"],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    script = data / "report.lua"
    script.write_text(REPORT)
    figures: dict[str, object] = {"database": vendor}
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
        for name, path in (("status_fragment", f"/generations/{running.pk}/card"), ("feed", "/gallery")):
            result = subprocess.run(
                ["wrk", "-t2", "-c50", "-d15s", "-s", str(script),
                 "-H", f"Cookie: sessionid={session.session_key}", "-H", "X-Forwarded-Proto: https",
                 f"http://127.0.0.1:{port}{path}"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            found = dict(re.findall(r"(\w+)=([\d.]+)", result.stdout.split("RESULT", 1)[1]))
            figures.update({f"{name}_{key}": value for key, value in found.items()})
    finally:
        server.terminate()
        server.wait(timeout=15)
    print(" ".join(f"{key}={value}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
