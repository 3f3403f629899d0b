"""Upload flood benchmark: how fast gunicorn (production mode) refuses 100 huge reference images.

    .venv/bin/python bench/uploads.py        # about 15 s

The attack from issue 14: `POST /generate` for a model that takes 3 references, with 100 copies
of a 6300×6300 PNG (about 115 KB each, 40 Mpx decoded). Times one such request (median of 5),
then four at once while another member loads the gallery. Also times the largest submission the
limits accept (three 6300×6300 images, decoded in full) for comparison. The figures come last.
"""

from __future__ import annotations

import io
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.services import free_port  # noqa: E402


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="nanoweb-uploads-"))
    env = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1",
           "NANOWEB_DATA_DIR": str(data), "STATIC_ROOT": str(data / "static"), "LOG_LEVEL": "WARNING"}  # fmt: skip
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanoweb.settings")
    import django

    django.setup()
    import requests
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connection
    from PIL import Image

    from nanoweb.providers.models import ProviderAccount

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    account = ProviderAccount.objects.create(
        kind="gemini", name="gemini", base_url="https://example.invalid", api_key="k"
    )
    cookies = {}
    for name in ("attacker", "bystander"):
        user = get_user_model().objects.create_user(name, password=secrets.token_urlsafe())
        session = SessionStore()
        session["_auth_user_id"], session["_auth_user_hash"] = str(user.pk), user.get_session_auth_hash()
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session.create()
        cookies[name] = session.session_key
    connection.close()

    out = io.BytesIO()
    Image.new("RGB", (6300, 6300)).save(out, "PNG")
    huge = out.getvalue()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    token = secrets.token_hex(16)
    # Through a proxy on loopback that says the request came over HTTPS (production mode).
    headers = {"X-Forwarded-Proto": "https", "Origin": f"https://127.0.0.1:{port}", "X-CSRFToken": token,
               "HX-Request": "true"}  # fmt: skip

    def submit(count: int) -> tuple[float, requests.Response]:
        files = [("reference_files", (f"huge-{n}.png", huge, "image/png")) for n in range(count)]
        form = {"prompt": "flood", "routing": str(account.pk), "model": "Nano Banana"}
        started = time.perf_counter()
        response = requests.post(f"{base}/generate", data=form, files=files, headers=headers, timeout=120,
                                 cookies={"sessionid": cookies["attacker"], "csrftoken": token})  # fmt: skip
        return time.perf_counter() - started, response

    def gallery() -> float:
        started = time.perf_counter()
        response = requests.get(f"{base}/gallery", headers={"X-Forwarded-Proto": "https"}, timeout=120,
                                cookies={"sessionid": cookies["bystander"]})  # fmt: skip
        assert response.status_code == 200, response.status_code
        return time.perf_counter() - started

    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "nanoweb.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "4", "--timeout", "60"],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                requests.get(f"{base}/healthz", timeout=15)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        gallery()  # warm up every worker's connection
        single = []
        for _ in range(5):
            seconds, response = submit(100)
            assert "takes at most 3 reference images; you gave 100" in response.text, response.text[:500]
            single.append(seconds)
        with ThreadPoolExecutor(5) as pool:
            floods = [pool.submit(submit, 100) for _ in range(4)]
            time.sleep(0.05)
            bystander = pool.submit(gallery).result()
            parallel = max(flood.result()[0] for flood in floods)
        accepted, response = submit(3)
        assert response.status_code == 201, response.text[:500]
    finally:
        server.terminate()
        server.wait(timeout=15)
    figures = {
        "refuse_100_files_s": f"{statistics.median(single):.3f}",
        "refuse_4x100_parallel_max_s": f"{parallel:.3f}",
        "gallery_during_4_floods_s": f"{bystander:.3f}",
        "accept_3_huge_files_s": f"{accepted:.3f}",
    }
    print(" ".join(f"{key}={value}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
