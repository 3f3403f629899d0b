"""Test settings: the real settings, with development defaults and a throw-away data folder."""

import os
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("DEBUG", "1")
# Under pytest-xdist each worker process, and the qcluster processes it starts (they inherit its
# environment), has its own data folder (file cache, SQLite files, secret key) and its own Redis
# database (cache and task queue): two workers never share a cache key, a stat or a task.
# (The workers inherit the folder pytest's main process chose, and add their name to it once.)
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_data = Path(os.environ.setdefault("NANOWEB_DATA_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test")))
if _worker and _data.name != _worker:
    os.environ["NANOWEB_DATA_DIR"] = str(_data / _worker)
if _worker and os.environ.get("REDIS_URL"):
    _redis = urlsplit(os.environ["REDIS_URL"])
    os.environ["REDIS_URL"] = _redis._replace(path=f"/{1 + int(_worker.removeprefix('gw')) % 15}").geturl()

from nanoweb.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
SWEEP_SECONDS = 5
