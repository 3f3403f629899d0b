"""Shared fixtures: the simulator on loopback, users of each role, a real worker cluster."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from nanoweb.providers.models import Options, ProviderAccount
from nanoweb.providers.registry import ADAPTERS
from nanoweb.providers.simulator import base_url_for
from nanoweb.providers.simulator.server import Simulator
from nanoweb.studio.jobs import finishing, pipeline
from nanoweb.studio.jobs.spec import JobSpec
from nanoweb.studio.models import GeneratedImage, Generation

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def simulator():
    sim = Simulator(api_key="sim-key", latency=0.4).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def idp():
    """A real OpenID Connect provider on a free loopback port (tests/idp.py), for the whole session."""
    from tests.idp import IdentityProvider

    provider = IdentityProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(autouse=True)
def _simulator_defaults(request):
    """Each test starts with the simulator's default latency, whatever the last one set."""
    if "simulator" in request.fixturenames:
        request.getfixturevalue("simulator").latency = 0.4


@pytest.fixture(autouse=True)
def _fresh_rate_limits(monkeypatch):
    """Each test's accounts start with none of their requests spent (account ids repeat
    between tests, and some limits count an hour)."""
    from nanoweb.lib.ratelimit import RateLimiter
    from nanoweb.studio.jobs import pipeline, sweep

    monkeypatch.setattr(pipeline, "limiter", RateLimiter())
    monkeypatch.setattr(pipeline, "tight_accounts", set())
    monkeypatch.setattr(sweep, "_noted", {})


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {"location": tmp_path / "media"}},
    }


@pytest.fixture
def make_account(db, simulator):
    """An account of the given kind on the simulator; `faults` go into its key (see the simulator)."""

    def make(kind: str, faults: str = "", name: str = "") -> ProviderAccount:
        adapter = ADAPTERS[kind]
        return ProviderAccount.objects.create(
            kind=kind,
            name=name or f"{kind} (sim)",
            base_url=base_url_for(simulator.base_url, kind, adapter.default_base_url),
            api_key="sim-key" + faults,
        )

    return make


@pytest.fixture
def crun_account(make_account):
    return make_account("crun")


def make_user(django_user_model, username: str, **extra):
    return django_user_model.objects.create_user(username=username, password=PASSWORD, **extra)


@pytest.fixture
def owner(db, django_user_model):
    return make_user(django_user_model, "olivia")


@pytest.fixture
def teammate(db, django_user_model):
    return make_user(django_user_model, "tom")


@pytest.fixture
def outsider(db, django_user_model):
    """A third member: neither the owner nor the teammate who builds on the owner's work."""
    return make_user(django_user_model, "otto")


@pytest.fixture
def staff(db, django_user_model):
    return make_user(django_user_model, "sam", is_staff=True)


@pytest.fixture
def admin_client(client, django_user_model):
    """A superuser's client (the Django admin needs model permissions, not only is_staff)."""
    client.force_login(django_user_model.objects.create_superuser("root", password="x-long-password-1"))
    return client


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def start_job(owner, account: ProviderAccount, model_id: str, prompt: str = "p", *, count: int = 1,
              automatic: bool = False, reference_files=(), reference_results=(), private: bool = False,
              **options) -> list[Generation]:  # fmt: skip
    """Start jobs through the pipeline as the form would, for this account's catalogue row of
    `model_id` (pinned to the account unless `automatic`)."""
    row = account.catalogue.get(model_id=model_id)
    spec = JobSpec(
        prompt=prompt, model_name=row.name, options=Options(**options), account=None if automatic else account.pk,
        count=count, reference_files=tuple(reference_files), reference_results=tuple(reference_results),
    )  # fmt: skip
    jobs = pipeline.start(owner=owner, spec=spec)
    if private:
        Generation.objects.filter(pk__in=[job.pk for job in jobs]).update(private=True)
    return jobs


def chosen(account: ProviderAccount, model_id: str) -> dict:
    """The studio form's fields that pick this account's row of `model_id` by hand."""
    return {"model": account.catalogue.get(model_id=model_id).name, "routing": account.pk}


def store_result(job: Generation, data: bytes, index: int = 0) -> GeneratedImage:
    """Store a result image with its renditions, as finishing and the rendition task do."""
    image = finishing.store_image(job, index, data)
    image.save()
    finishing.make_renditions(image)
    return image


def succeed(job: Generation, **fields) -> bool:
    """Walk a queued job through the table to SUCCEEDED (as if the provider had made it)."""
    job.advance(Generation.Status.QUEUED, Generation.Status.SUBMITTING)
    job.advance(Generation.Status.SUBMITTING, Generation.Status.SUBMITTED)
    job.advance(Generation.Status.SUBMITTED, Generation.Status.FINISHING)
    return job.advance(Generation.Status.FINISHING, Generation.Status.SUCCEEDED, **fields)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def wait_until_terminal(generation: Generation, timeout: float = 30.0) -> Generation:
    def terminal():
        generation.refresh_from_db()
        return generation.is_terminal

    wait_for(terminal, timeout)
    return generation


def database_env() -> dict[str, str]:
    """How another process reaches the test database (SQLite file or PostgreSQL test database)."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"NANOWEB_DB_PATH": str(database["NAME"])}
    return {"DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"}


@pytest.fixture
def start_worker(transactional_db, tmp_path, settings):
    """Start real `manage.py qcluster` processes on the test database; all are stopped after the test."""
    processes = []

    def start(**env: str) -> subprocess.Popen:
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            **database_env(),
            "NANOWEB_MEDIA_ROOT": str(settings.STORAGES["default"]["OPTIONS"]["location"]),
            "Q_WORKERS": "2",
            **env,
        }
        log = open(tmp_path / f"worker-{len(processes)}.log", "wb")
        # Its own process group, so that a test can kill the whole cluster at once.
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            cwd=ROOT, env=environment, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        processes.append((process, log))
        return process

    yield start
    for process, _ in processes:
        process.terminate()  # the cluster's parent stops its workers; they must not get it directly
    for process, log in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def worker(start_worker):
    return start_worker()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the fixtures make
    # from it are still synchronous, which Django must be told is fine (for these tests only).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def csp_violations() -> list[str]:
    """What the browser refused under the Content-Security-Policy during the test, and any other
    error it reported (a console error such as htmx's, an uncaught exception)."""
    return []


def complained(message, page) -> bool:
    """A CSP report or a console error; a page visited on purpose may be an error page, and its
    own status is no error of the page (a resource it loads that fails is)."""
    if message.type != "error" and "Content Security Policy" not in message.text:
        return False
    return not (message.text.startswith("Failed to load resource") and message.location.get("url") == page.url)


@pytest.fixture
def new_page(browser, csp_violations):
    """Open a tab in a fresh browser context (`new_page(viewport=..., color_scheme=...)`). The test
    fails if the browser reports any Content-Security-Policy violation (a test that provokes one
    on purpose empties `csp_violations`)."""
    contexts = []

    def new(**options):
        options = {"accept_downloads": True, "viewport": {"width": 1280, "height": 900}, **options}
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: complained(message, page) and csp_violations.append(message.text))
        page.on("pageerror", lambda error: csp_violations.append(f"uncaught: {error}"))
        return page

    yield new
    for context in contexts:
        context.close()
    assert not csp_violations, f"the browser reported a CSP violation or an error: {csp_violations}"


@pytest.fixture
def page(new_page):
    """A fresh browser tab at 1280×900."""
    return new_page()
