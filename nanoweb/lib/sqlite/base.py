"""Django's SQLite backend, with the writers of one process taking turns in Python.

SQLite lets one writer in at a time. The others wait in its busy handler, which sleeps 1,
2, 5, 10, 15, 20, 25… ms between tries, so when dozens of threads write at once (the poll
sweep's pool, the web server's threads) the lock is mostly free while they all sleep: a
sweep needed 1.7 s to record 100 status reads that take a few ms each. Here a thread waits
for its process's turn on a lock that hands over at once, so only one writer per process
meets SQLite's lock, which still orders the processes. A turn is a write transaction
(BEGIN IMMEDIATE until commit or rollback) or one write statement outside of one.
"""

from __future__ import annotations

import threading

from django.db import OperationalError
from django.db.backends.sqlite3 import base

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_turn = threading.RLock()


def _take_turn(timeout: float) -> None:
    if not _turn.acquire(timeout=timeout):
        raise OperationalError("database is locked (waited for this process's other writers)")


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    timeout = 30.0

    def execute(self, query, params=None):
        if not query.lstrip()[:7].upper().startswith(WRITES):
            return super().execute(query, params)
        _take_turn(self.timeout)
        try:
            return super().execute(query, params)
        finally:
            _turn.release()

    def executemany(self, query, param_list):
        _take_turn(self.timeout)
        try:
            return super().executemany(query, param_list)
        finally:
            _turn.release()


class DatabaseWrapper(base.DatabaseWrapper):
    _has_turn = False

    @property
    def _timeout(self) -> float:
        return float(self.settings_dict["OPTIONS"].get("timeout", 5))

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=SQLiteCursorWrapper)
        cursor.timeout = self._timeout
        return cursor

    def _start_transaction_under_autocommit(self):
        _take_turn(self._timeout)
        self._has_turn = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._give_turn()
            raise

    def _give_turn(self) -> None:
        if self._has_turn:
            self._has_turn = False
            _turn.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._give_turn()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._give_turn()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._give_turn()
