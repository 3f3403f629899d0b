"""Run a command against a throw-away PostgreSQL server on loopback, then stop it.

    python -m tests.with_postgres python -m pytest tests/test_credits_concurrency.py

Uses Debian's server binaries (apt-get install postgresql); the cluster lives in a
temporary folder, listens on a free port on 127.0.0.1, and is removed afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile


def server_binaries() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        sys.exit("PostgreSQL is not installed: apt-get install postgresql")
    return os.path.dirname(found[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(command: list[str]) -> int:
    bindir, port = server_binaries(), free_port()
    data = tempfile.mkdtemp(prefix="nanoweb-pg-")
    # The server refuses to run as root; Debian's package provides the postgres user.
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_owner:
        shutil.chown(data, "postgres")
    pg_ctl = [*as_owner, f"{bindir}/pg_ctl", "-D", data]
    try:
        subprocess.run([*as_owner, f"{bindir}/initdb", "-D", data, "-U", "nanoweb", "-A", "trust", "-E", "UTF8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(
            [*pg_ctl, "-l", f"{data}/server.log", "-o", options, "-w", "start"], check=True, stdout=subprocess.DEVNULL
        )
        subprocess.run(
            [f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "nanoweb", "nanoweb"], check=True
        )
        env = {**os.environ, "DATABASE_URL": f"postgres://nanoweb@127.0.0.1:{port}/nanoweb"}
        return subprocess.call(command, env=env)
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
