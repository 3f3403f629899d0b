"""Sign-in throttle against forwarded-address spoofing (issue 24, item 4).

    .venv/bin/python bench/throttle.py        # a few seconds

Pattern 1: a guesser on this host (127.0.0.1) sends a new X-Forwarded-For every five guesses:
how many of 200 wrong passwords are checked (answered 200, not 429)?
Pattern 2: behind a proxy named in TRUSTED_PROXIES that writes entries with a port
(`203.0.113.1:1234`) or `unknown`, a guesser fails five times; can the victim, from another
address, still sign in?
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="nanoweb-throttle-"))
    os.environ.update({"DEBUG": "1", "NANOWEB_DATA_DIR": str(data), "LOG_LEVEL": "ERROR", "ALLOWED_HOSTS": "*"})
    os.environ.pop("TRUSTED_PROXIES", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanoweb.settings")
    import django

    django.setup()
    from axes.models import AccessAttempt
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    password = secrets.token_urlsafe()
    get_user_model().objects.create_user("victim", password=password)

    def attempt(password: str, remote: str, forwarded: str) -> int:
        data = {"username": "victim", "password": password}
        return Client().post("/login", data, REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded).status_code

    print(f"TRUSTED_PROXIES by default: {settings.TRUSTED_PROXIES}")
    checked = sum(attempt(f"guess-{n}", "127.0.0.1", f"198.51.100.{n // 5}") == 200 for n in range(200))
    print(f"pattern 1, rotating X-Forwarded-For from 127.0.0.1: {checked} of 200 wrong passwords checked")
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    for entry in ("203.0.113.1:1234", "unknown"):
        AccessAttempt.objects.all().delete()
        for n in range(5):
            attempt(f"guess-{n}", "127.0.0.1", entry)
        victim = attempt(password, "127.0.0.1", "198.51.100.200:5555")
        print(f"pattern 2, proxy writes {entry!r}: after 5 guesses the victim from elsewhere gets HTTP {victim}")
    settings.TRUSTED_PROXIES = []


if __name__ == "__main__":
    main()
