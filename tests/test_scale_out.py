"""The scale-out path, for real: production settings, gunicorn with whitenoise, the Redis broker."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.urls import reverse
from django_q.models import OrmQ

from nanoweb.studio import audit
from nanoweb.studio.models import Generation
from tests import services
from tests.conftest import ROOT, database_env, start_job, wait_for, wait_until_terminal
from tests.services import free_port


def wait_for_port(port: int) -> None:
    wait_for(lambda: _try(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True), timeout=20)


def production_env(tmp_path, **extra) -> dict:
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "nanoweb.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "NANOWEB_DATA_DIR": str(tmp_path / "data"),
        "STATIC_ROOT": str(tmp_path / "static"),
        **extra,
    }


def manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.portable
def test_production_settings_pass_the_deploy_check(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.portable
def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    result = manage(env, "check")
    assert result.returncode != 0 and "SECRET_KEY must be set when DEBUG is off" in result.stderr


@pytest.mark.portable
def test_gunicorn_serves_the_studio_and_compressed_hashed_static_files(tmp_path):
    env = production_env(tmp_path)
    assert manage(env, "migrate", "--noinput").returncode == 0
    assert manage(env, "collectstatic", "--noinput", "-v0").returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "nanoweb.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Behind the documented reverse proxy, which terminates TLS and says so.
        https = {"X-Forwarded-Proto": "https"}

        def get(path, headers=None):
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={**https, **(headers or {})})
            return urllib.request.urlopen(request, timeout=5)

        page = wait_for(lambda: _try(lambda: get("/login")), timeout=20)
        html = page.read().decode()
        assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        stylesheet = html.split('<link rel="stylesheet" href="', 1)[1].split('"', 1)[0]
        assert stylesheet.startswith("/static/css/app.") and stylesheet != "/static/css/app.css", "hashed name"
        css = get(stylesheet, {"Accept-Encoding": "gzip"})
        assert css.headers["Content-Encoding"] == "gzip"
        assert "max-age=315360000" in css.headers["Cache-Control"], "hashed files are cached for good"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _try(call):
    try:
        return call()
    except OSError:
        return None


@pytest.fixture
def redis_url():
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is missing: `make test` installs Debian's redis-server package")
    with services.redis() as url:
        yield url


def test_jobs_go_through_the_redis_broker_when_redis_url_is_set(redis_url, start_worker, owner, crun_account):
    # redis_url comes first so that its server outlives the workers: they stop at once, not after 10 s.
    start_worker(REDIS_URL=redis_url)
    # The submission comes from another process configured the same way, as a web host would be.
    script = (
        "from nanoweb.providers.models import ProviderAccount;"
        "from django.contrib.auth import get_user_model;"
        "from tests.conftest import start_job;"
        f"start_job(get_user_model().objects.get(pk={owner.pk}), ProviderAccount.objects.get(pk={crun_account.pk}),"
        " 'google/nano-banana', 'via redis')"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "REDIS_URL": redis_url, **database_env()}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr

    job = wait_until_terminal(wait_for(lambda: Generation.objects.filter(prompt="via redis").first()))
    assert job.status == "succeeded", job.error_detail
    assert not OrmQ.objects.exists(), "nothing went through the database broker"


def test_two_worker_clusters_share_the_work_and_do_each_job_exactly_once(start_worker, owner, crun_account, simulator):
    from collections import Counter

    from nanoweb.credits.models import Budget
    from nanoweb.studio.models import GeneratedImage

    Budget.objects.create(user=owner, amount=100, period="none")
    simulator.latency = 0.5
    start_worker()
    start_worker()  # think: a second host
    jobs = [start_job(owner, crun_account, "google/nano-banana", f"shared {n}")[0] for n in range(100)]
    for job in jobs:
        wait_until_terminal(job, timeout=90)

    assert Counter(job.status for job in jobs) == {"succeeded": 100}
    creates = Counter(r.json()["input"]["prompt"] for r in list(simulator.requests) if r.path.endswith("/CreateTask"))
    assert all(creates[f"shared {n}"] == 1 for n in range(100)), "each job submitted exactly once"
    assert Counter(GeneratedImage.objects.values_list("generation", flat=True)) == {job.pk: 1 for job in jobs}
    assert audit.ledger_problems() == [], "each job charged exactly once"


@pytest.fixture
def s3(tmp_path, settings):
    """moto's S3 server on loopback with a fresh bucket; the default storage points at it."""
    import boto3

    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")  # fmt: skip
    try:
        wait_for_port(port)
        client.create_bucket(Bucket="nanoweb-images")
    except BaseException:
        server.kill()
        raise
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "nanoweb-images", "endpoint_url": endpoint, "access_key": "test", "secret_key": "test",
                    "region_name": "us-east-1", "default_acl": "private", "file_overwrite": False},
    }}  # fmt: skip
    yield client
    server.terminate()
    server.wait(timeout=10)


@pytest.mark.portable
def test_images_live_in_the_object_store_private_and_served_through_the_app(
    s3, client, owner, teammate, make_account, django_capture_on_commit_callbacks
):
    from nanoweb.studio import history
    from nanoweb.studio.jobs import finishing
    from tests.test_providers import new_generation, run_to_end

    job = run_to_end(new_generation(owner, make_account("crun"), "google/nano-banana", private=True))
    assert job.status == "succeeded", job.error_detail
    image = job.images.get()
    finishing.make_renditions(image)  # the renderer's work, here in this process
    image.refresh_from_db()
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket="nanoweb-images")["Contents"]}
    assert keys == {image.original.name, image.display.name, image.thumbnail.name}
    grants = s3.get_object_acl(Bucket="nanoweb-images", Key=image.original.name)["Grants"]
    assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"], "no public-read grant"

    client.force_login(owner)
    served = client.get(reverse("image_original", args=[image.pk]))
    assert (
        b"".join(served.streaming_content)
        == s3.get_object(Bucket="nanoweb-images", Key=image.original.name)["Body"].read()
    )
    client.force_login(teammate)
    assert client.get(reverse("image_original", args=[image.pk])).status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        history.delete(job)
    assert s3.list_objects_v2(Bucket="nanoweb-images").get("KeyCount") == 0
