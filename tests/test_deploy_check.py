"""Production settings pass Django's deployment checks (and django-axes' and django-csp's own)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.portable


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "nanoweb.settings", "DEBUG": "0", "NANOWEB_DATA_DIR": str(tmp_path),
           "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop", "ALLOWED_HOSTS": "studio.example"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout
