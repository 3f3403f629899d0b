"""The SQLite connection's settings, which every server thread and worker gets from nanoweb.settings."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's pragmas")


@pytest.mark.django_db
def test_every_connection_writes_ahead_and_reads_through_a_memory_map():
    fresh = connection.copy()  # a new connection, set up by init_command
    try:
        with fresh.cursor() as cursor:
            pragmas = {name: cursor.execute(f"PRAGMA {name}").fetchone()[0] for name in ("journal_mode", "mmap_size")}
    finally:
        fresh.close()
    assert pragmas == {"journal_mode": "wal", "mmap_size": 1 << 30}
