"""Test settings: the real settings, with development defaults and a throw-away data folder."""

import os
from pathlib import Path

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("NANOWEB_DATA_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))

from nanoweb.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
SWEEP_SECONDS = 5
