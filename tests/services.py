"""Run a command with throw-away PostgreSQL and/or Redis servers on loopback, then stop them.

    python -m tests.services postgres -- python -m pytest tests/test_credits_concurrency.py
    python -m tests.services postgres redis -- python -m pytest

Uses Debian's server binaries (apt-get install postgresql redis-server). Each server lives in
a temporary folder, listens on a free port on 127.0.0.1, and is removed afterwards. The command
gets DATABASE_URL and/or REDIS_URL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        sys.exit("PostgreSQL is not installed: apt-get install postgresql")
    bindir, port = os.path.dirname(found[-1]), free_port()
    data = tempfile.mkdtemp(prefix="nanoweb-pg-")
    # The server refuses to run as root; Debian's package provides the postgres user.
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_owner:
        shutil.chown(data, "postgres")
    pg_ctl = [*as_owner, f"{bindir}/pg_ctl", "-D", data]
    try:
        subprocess.run([*as_owner, f"{bindir}/initdb", "-D", data, "-U", "nanoweb", "-A", "trust", "-E", "UTF8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        subprocess.run(
            [*pg_ctl, "-l", f"{data}/server.log", "-o", options, "-w", "start"], check=True, stdout=subprocess.DEVNULL
        )
        subprocess.run(
            [f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "nanoweb", "nanoweb"], check=True
        )
        yield f"postgres://nanoweb@127.0.0.1:{port}/nanoweb"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def redis() -> Iterator[str]:
    if not shutil.which("redis-server"):
        sys.exit("Redis is not installed: apt-get install redis-server")
    port, data = free_port(), tempfile.mkdtemp(prefix="nanoweb-redis-")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", data],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


SERVICES = {"postgres": ("DATABASE_URL", postgres), "redis": ("REDIS_URL", redis)}


def main(argv: list[str]) -> int:
    if "--" not in argv or not set(argv[: argv.index("--")]) <= set(SERVICES):
        sys.exit(f"usage: python -m tests.services [{'|'.join(SERVICES)}]... -- command")
    names, command = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        for name in names:
            variable, service = SERVICES[name]
            env[variable] = stack.enter_context(service())
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
