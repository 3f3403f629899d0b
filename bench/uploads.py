"""Upload flood benchmark: how fast gunicorn (production mode) refuses 100 huge reference images.

    .venv/bin/python bench/uploads.py        # about 15 s
    .venv/bin/python bench/uploads.py inline [JUNK_MB] [WIDTH]   # worker memory, issue 24

`inline`: the submission of issue 24 (count=4 for a Gemini account, 14 references, each a valid
64×64 PNG followed by JUNK_MB (19.9) MB of other bytes) goes through the studio form; then a fresh
process, as a worker would, makes the set's four synchronous Gemini calls at once (against the
simulator in its own process) and reports its peak RSS. With JUNK_MB 0 and WIDTH 1000, the
references are 14 noise PNGs of WIDTH × WIDTH: the largest submission the limits accept.

The attack from issue 14: `POST /generate` for a model that takes 3 references, with 100 copies
of a 6300×6300 PNG (about 115 KB each, 40 Mpx decoded). Times one such request (median of 5),
then four at once while another member loads the gallery. Also times the largest submission the
limits accept (three 6300×6300 images, decoded in full) for comparison. The figures come last.
"""

from __future__ import annotations

import io
import os
import re
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


def inline(junk_mb: float, width: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="nanoweb-inline-"))
    port = free_port()
    os.environ.update(
        {"DEBUG": "1", "NANOWEB_DATA_DIR": str(data), "LOG_LEVEL": "ERROR", "ALLOWED_HOSTS": "testserver"}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanoweb.settings")
    simulator = subprocess.Popen(
        [sys.executable, "-m", "nanoweb.providers.simulator", "--port", str(port), "--latency", "0.1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        submitted = subprocess.run(
            [sys.executable, __file__, "inline-submit", str(junk_mb), str(width), str(port)],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        print(submitted)
        if "refused" not in submitted:
            worked = subprocess.run(
                [sys.executable, __file__, "inline-work"], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
            print(worked)
    finally:
        simulator.terminate()
        simulator.wait(timeout=15)


def inline_submit(junk_mb: float, width: int, port: int) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.test import Client
    from PIL import Image

    from nanoweb.providers.models import ProviderAccount
    from nanoweb.studio.models import Generation, ReferenceImage

    call_command("migrate", verbosity=0)
    account = ProviderAccount.objects.create(
        kind="gemini", name="gemini", base_url=f"http://127.0.0.1:{port}/gemini/v1beta", api_key="sim-key"
    )
    client = Client()
    client.force_login(get_user_model().objects.create_user("member", password=secrets.token_urlsafe()))
    files = []
    for n in range(14):
        out = io.BytesIO()
        (Image.effect_noise((width, width), 80) if not junk_mb else Image.new("RGB", (64, 64))).save(out, "PNG")
        body = out.getvalue() + b"\0" * int(junk_mb * 1024 * 1024)
        files.append(SimpleUploadedFile(f"ref-{n}.png", body, content_type="image/png"))
    sent = sum(f.size for f in files)
    form = {"prompt": "memory", "model": "Nano Banana 2", "routing": str(account.pk), "resolution": "1K", "count": "4"}
    response = client.post("/generate", {**form, "reference_files": files}, HTTP_HX_REQUEST="true")
    stored = sum(ReferenceImage.objects.values_list("bytes", flat=True))
    reason = re.findall(r"errorlist[^>]*><li>(.*?)<", response.content.decode(), re.S) or [
        f"HTTP {response.status_code}"
    ]
    outcome = "accepted" if response.status_code == 201 else f"refused ({reason[0].strip()[:160]})"
    print(f"submission_bytes={sent} {outcome} jobs={Generation.objects.count()} stored_reference_bytes={stored}")


def inline_work() -> None:
    import resource
    import threading

    import django

    django.setup()
    from nanoweb.studio.jobs import pipeline
    from nanoweb.studio.models import Generation

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    jobs = list(Generation.objects.select_related("account"))
    started = time.perf_counter()
    threads = [threading.Thread(target=pipeline.submit, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    statuses = sorted(Generation.objects.values_list("status", flat=True))
    print(f"worker_peak_rss_mb={peak / 1024:.0f} (at start {base / 1024:.0f}) calls_s={time.perf_counter() - started:.1f}"
          f" statuses={statuses}")  # fmt: skip


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="nanoweb-uploads-"))
    env = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1",
           "NANOWEB_DATA_DIR": str(data), "STATIC_ROOT": str(data / "static"), "LOG_LEVEL": "WARNING",
           "TRUSTED_PROXIES": "127.0.0.1"}  # fmt: skip
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
    if sys.argv[1:2] == ["inline"]:
        inline(float(sys.argv[2]) if len(sys.argv) > 2 else 19.9, int(sys.argv[3]) if len(sys.argv) > 3 else 64)
    elif sys.argv[1:2] == ["inline-submit"]:
        inline_submit(float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1:2] == ["inline-work"]:
        inline_work()
    else:
        main()
