"""Shared fixtures: the simulator on loopback, users of each role, a real worker cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from nanoweb.providers.models import ProviderAccount
from nanoweb.providers.simulator.server import Simulator
from nanoweb.studio.models import Generation

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def simulator():
    sim = Simulator(api_key="sim-key", latency=0.4).start()
    yield sim
    sim.stop()


@pytest.fixture(autouse=True)
def _simulator_defaults(request):
    """Each test starts with the simulator's default latency, whatever the last one set."""
    if "simulator" in request.fixturenames:
        request.getfixturevalue("simulator").latency = 0.4


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {"location": tmp_path / "media"}},
    }


@pytest.fixture
def crun_account(db, simulator):
    return ProviderAccount.objects.create(
        kind="crun", name="crun (sim)", base_url=simulator.base_url + "/crun", api_key="sim-key"
    )


def make_user(django_user_model, username: str, **extra):
    return django_user_model.objects.create_user(username=username, password=PASSWORD, **extra)


@pytest.fixture
def owner(db, django_user_model):
    return make_user(django_user_model, "olivia")


@pytest.fixture
def teammate(db, django_user_model):
    return make_user(django_user_model, "tom")


@pytest.fixture
def staff(db, django_user_model):
    return make_user(django_user_model, "sam", is_staff=True)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


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


@pytest.fixture
def worker(transactional_db, tmp_path, settings):
    """A real `manage.py qcluster` process on the test database; killed after the test."""
    media = settings.STORAGES["default"]["OPTIONS"]["location"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "NANOWEB_DB_PATH": str(connection.settings_dict["NAME"]),
        "NANOWEB_MEDIA_ROOT": str(media),
        "Q_WORKERS": "2",
    }
    log = open(tmp_path / "worker.log", "wb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
