"""`make run` / `make serve` start the web server through runstudio: gunicorn with threads, on loopback unless told."""

from __future__ import annotations

import pytest

from nanoweb.studio.management.commands.runstudio import Command, web_server

pytestmark = pytest.mark.portable


def options(*args: str):
    return Command().create_parser("manage.py", "runstudio").parse_args(list(args))


def test_the_studio_listens_on_loopback_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("BIND", raising=False)
    assert options("--production").bind == "127.0.0.1"
    assert options("--production", "--bind", "0.0.0.0").bind == "0.0.0.0"
    monkeypatch.setenv("BIND", "10.0.0.5")
    assert options("--production").bind == "10.0.0.5"


def test_the_web_server_is_gunicorn_with_threads_in_both_modes():
    for production in (False, True):
        command = web_server(bind="::1", port=8011, production=production)
        assert command[1:4] == ["-m", "gunicorn", "nanoweb.wsgi:application"]
        assert command[command.index("--bind") + 1] == "[::1]:8011"
        assert command[command.index("--worker-class") + 1] == "gthread"
        assert int(command[command.index("--threads") + 1]) > 1
        assert ("--access-logfile" in command) == production
