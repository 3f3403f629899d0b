"""A per-key sliding-window limit shared by the threads of one process.

At most `per_second` requests in any one-second window (for limits under one per second:
one request per 1/limit seconds), with a small margin so that the provider, counting
arrivals, sees no more either. All provider requests go through the one poll sweep that
holds the lease, so a limit kept in that process holds for the whole team; the sweep
hands its recent requests on to its successor (`snapshot` / `restore`).

The sweep decides how many requests to start from `room`, and gives each one a `Permit`:
the request takes its slot (`acquire`) only when it is sent, and until then it counts
against the room, so that the next decision does not spend the same slot twice.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque

MARGIN = 0.05  # seconds: arrival jitter between us and the provider's counter


class RateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[str, deque[float]] = {}
        self._promised: Counter[str] = Counter()

    @staticmethod
    def _limits(per_second: float) -> tuple[int, float]:
        allowed = max(1, math.floor(per_second))
        return allowed, allowed / per_second + MARGIN

    def _recent(self, key: str, window: float) -> deque[float]:
        sent = self._sent.setdefault(key, deque())
        now = time.time()  # wall-clock, so that a snapshot means the same in another process
        while sent and now - sent[0] >= window:
            sent.popleft()
        return sent

    def acquire(self, key: str, per_second: float) -> float:
        """Wait until one more request for `key` keeps within the limit; returns the time waited."""
        allowed, window = self._limits(per_second)
        waited = 0.0
        while True:
            with self._lock:
                sent = self._recent(key, window)
                if len(sent) < allowed:
                    sent.append(time.time())
                    return waited
                pause = sent[0] + window - time.time()
            time.sleep(max(pause, 0.001))
            waited += pause

    def room(self, key: str, per_second: float) -> int:
        """How many more requests for `key` could start now, counting those promised."""
        allowed, window = self._limits(per_second)
        with self._lock:
            return max(0, allowed - len(self._recent(key, window)) - self._promised[key])

    def promise(self, key: str, per_second: float) -> Permit:
        with self._lock:
            self._promised[key] += 1
        return Permit(self, key, per_second)

    def _unpromise(self, key: str) -> None:
        with self._lock:
            self._promised[key] -= 1
            if self._promised[key] <= 0:
                del self._promised[key]

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


class Permit:
    """One promised request: `use` before each request it makes (the first one turns the
    promise into a sent slot), `release` when done (returns an unused promise)."""

    def __init__(self, limiter: RateLimiter, key: str, per_second: float) -> None:
        self.limiter, self.key, self.per_second = limiter, key, per_second
        self.promised = True

    def use(self) -> None:
        if self.promised:
            self.promised = False
            self.limiter._unpromise(self.key)
        self.limiter.acquire(self.key, self.per_second)

    def release(self) -> None:
        if self.promised:
            self.promised = False
            self.limiter._unpromise(self.key)
