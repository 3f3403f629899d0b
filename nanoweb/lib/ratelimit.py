"""A per-key sliding-window limit shared by the threads of one process.

At most `per_second` requests in any one-second window (for limits under one per second:
one request per 1/limit seconds), with a small margin so that the provider, counting
arrivals, sees no more either. All provider requests go through the one poll sweep that
holds the lease, so a limit kept in that process holds for the whole team; the sweep
hands its recent requests on to its successor (`snapshot` / `restore`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

MARGIN = 0.05  # seconds: arrival jitter between us and the provider's counter


class RateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[str, deque[float]] = {}

    def acquire(self, key: str, per_second: float) -> float:
        """Wait until one more request for `key` keeps within the limit; returns the time waited."""
        allowed = max(1, math.floor(per_second))
        window = allowed / per_second + MARGIN
        waited = 0.0
        while True:
            with self._lock:
                sent = self._sent.setdefault(key, deque())
                now = time.time()  # wall-clock, so that a snapshot means the same in another process
                while sent and now - sent[0] >= window:
                    sent.popleft()
                if len(sent) < allowed:
                    sent.append(now)
                    return waited
                pause = sent[0] + window - now
            time.sleep(pause)
            waited += pause

    def snapshot(self) -> dict[str, list[float]]:
        """Requests of the last few seconds, for the next holder of the limit."""
        horizon = time.time() - 2
        with self._lock:
            return {key: [t for t in sent if t > horizon] for key, sent in self._sent.items()}

    def restore(self, snapshot: dict[str, list[float]]) -> None:
        with self._lock:
            for key, times in snapshot.items():
                merged = sorted({*self._sent.get(key, ()), *times})
                self._sent[key] = deque(merged)
