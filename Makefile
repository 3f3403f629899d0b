# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run serve test setup chromium postgres redis lint

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

setup: $(VENV)/.installed

run: setup
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py demo_setup
	DEBUG=1 TRUSTED_PROXIES=$${TRUSTED_PROXIES-127.0.0.1,::1} $(PY) manage.py runstudio

# Production mode (DEBUG off): set SECRET_KEY, ALLOWED_HOSTS and friends first (README).
serve: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py runstudio --production

# The browser tests drive Debian's Chromium; never a downloaded browser.
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# The second run of the suite uses real PostgreSQL and Redis servers (started and stopped by tests/services.py)
# for what depends on the backend: the ledger, locking, queries, search, workers, the broker and the cache.
# It leaves out the browser tests, which check pages that do not depend on the database, and the tests
# marked `portable` (a module's `pytestmark = pytest.mark.portable`): wire formats against the simulator,
# templates, forms, imports, production settings. A test is on both unless marked, so mark one portable
# only when nothing it proves could differ on PostgreSQL or Redis.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql; }

# The scale-out tests start a throw-away Redis server.
redis:
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; }

# Three pytest-xdist workers on two cores: most tests wait on I/O (the simulator, worker processes, the browser).
# Each worker has its own test database, data folder and Redis database (tests/settings.py).
test: setup chromium postgres redis
	$(PY) -m mypy
	$(PY) -m pytest -n 3
	$(PY) -m tests.services postgres redis -- $(PY) -m pytest -n 3 -m "not browser and not portable"

lint: setup
	$(PY) -m pip install --quiet ruff
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
