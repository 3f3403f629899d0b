"""A per-key token bucket shared by the threads of one process.

All provider requests go through the one poll sweep that holds the lease, so a limit kept
in that process holds for the whole team. Right after a lease moves to another process,
the new bucket starts full: at most one second's burst more than the limit.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[object, tuple[float, float]] = {}  # key → (tokens, last refill)

    def acquire(self, key: object, per_second: float) -> float:
        """Take one token for `key`, sleeping until there is one; returns the time waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                burst = max(1.0, per_second)  # one second's worth, and at least one request
                tokens, last = self._buckets.get(key, (burst, now))
                tokens = min(burst, tokens + (now - last) * per_second)
                if tokens >= 1:
                    self._buckets[key] = (tokens - 1, now)
                    return waited
                self._buckets[key] = (tokens, now)
                pause = (1 - tokens) / per_second
            time.sleep(pause)
            waited += pause
