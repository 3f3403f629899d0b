"""Sliding-window request limits per key (an account), shared by the threads of one process.

A key's `Limits` are any of: requests per second, per minute, per hour (each optional). A
request goes out only when it keeps within every one of them, with a small margin so that
the provider, counting arrivals, sees no more either (for limits under one per second: one
request per 1/limit seconds). All provider requests go through the one poll sweep that holds
the lease, so a limit kept in that process holds for the whole team; the sweep hands its
requests of the longest window (an hour for nanophoto's 100 an hour) on to its successor
(`snapshot` / `restore`), and writes them to its lease now and then, so that a successor
after a crash knows them too.

The sweep decides how many requests to start from `room`, and gives each one a `Permit`:
the request takes its slot (`acquire`) only when it is sent, and until then it counts
against the room, so that the next decision does not spend the same slot twice.

A refusal that comes anyway (429) teaches the limiter: `refused` blocks the key until the
vendor's Retry-After, or else until the oldest request of the longest window leaves it.

The limiter also counts every request it let out, and every refusal, per minute for the
last hour: what the health page shows as each account's budget use.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

MARGIN = 0.05  # seconds: arrival jitter between us and the provider's counter
HOUR = 3600.0
SHORT_HORIZON = 2.0  # seconds of requests a snapshot keeps for keys limited per second only
# A key with a limit over a minute or an hour is "tight" when, after three requests for each
# job it has now, less than this share of that window's allowance would be left.
TIGHT_RESERVE = 0.75
REQUESTS_PER_JOB = 3  # a create, a read that finds the job running, one that finds it done
SPARE_READS = 2  # reads a budget keeps, beyond one for each job out, before it lets a create go


@dataclass(frozen=True)
class Window:
    allowed: int
    seconds: float
    unit: str  # "second", "minute", "hour": for people


@dataclass(frozen=True)
class Limits:
    """What a vendor allows one key: requests per second, minute and hour (None: no limit)."""

    per_second: float | None = None
    per_minute: int | None = None
    per_hour: int | None = None

    @classmethod
    def of(cls, value: Limits | float | None) -> Limits:
        return value if isinstance(value, Limits) else cls(per_second=value)

    @property
    def windows(self) -> tuple[Window, ...]:
        found = []
        if self.per_second:
            allowed = max(1, math.floor(self.per_second))
            found.append(Window(allowed, allowed / self.per_second + MARGIN, "second"))
        if self.per_minute:
            found.append(Window(self.per_minute, 60 + MARGIN, "minute"))
        if self.per_hour:
            found.append(Window(self.per_hour, HOUR + MARGIN, "hour"))
        return tuple(found)

    @property
    def long_windows(self) -> tuple[Window, ...]:
        """The windows a budget is spent over (a minute or longer)."""
        return tuple(window for window in self.windows if window.seconds > 2)

    def describe(self, window: Window) -> str:
        """E.g. "100 requests an hour"."""
        article = "an" if window.unit == "hour" else "a"
        return f"{window.allowed} request{'s' * (window.allowed != 1)} {article} {window.unit}"


@dataclass(frozen=True)
class Budget:
    """Where a key stands in its long windows: why and until when it cannot send.

    Reads of jobs already out come first: a create goes only while the window keeps a read
    for every job out and for its own, and SPARE_READS more for reads that find a job still
    running (else a job would be sent, paid for, and not read again within the hour)."""

    room: int  # requests that could go now (counting those promised)
    free_at: float  # epoch seconds when the next one could go (now when room > 0)
    creates: int  # creates that could go now, keeping a read for each job out and for themselves
    create_free_at: float  # epoch seconds when the next create could go
    full: Window | None  # the long window that keeps creates back, if one does
    tight: bool  # reads must be spared: at most one a job where it is likeliest to find it done


class RateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # key → window length (seconds) → the requests within that window, oldest first
        self._sent: dict[str, dict[float, deque[float]]] = {}
        self._promised: Counter[str] = Counter()
        self._blocked: dict[str, float] = {}  # key → epoch seconds: the vendor refused us until then
        self._counts: dict[str, Counter[int]] = {}  # key → minute (epoch // 60) → requests sent
        self._refusals: dict[str, Counter[int]] = {}  # key → minute → 429s

    def _window(self, key: str, window: Window) -> deque[float]:
        """The key's requests within `window` (at most as many as it allows: older ones no
        longer decide anything); lock held."""
        windows = self._sent.setdefault(key, {})
        sent = windows.get(window.seconds)
        if sent is None or sent.maxlen != window.allowed:
            # A new limit: what we know of the key's requests so far counts.
            known = sent if sent is not None else windows[max(windows)] if windows else ()
            sent = windows[window.seconds] = deque(known, maxlen=window.allowed)
        now = time.time()  # wall-clock, so that a snapshot means the same in another process
        while sent and now - sent[0] >= window.seconds:
            sent.popleft()
        return sent

    def _free_at(self, key: str, windows: tuple[Window, ...], pending: int) -> float:
        """When one more request could go, with `pending` more spoken for; lock held."""
        now = time.time()
        at = max(now, self._blocked.get(key, 0.0))
        for window in windows:
            sent = self._window(key, window)
            over = len(sent) + pending - window.allowed  # this many must leave the window first
            if over >= 0:
                at = max(at, sent[over] + window.seconds if over < len(sent) else now + window.seconds)
        return at

    def _room(self, key: str, windows: tuple[Window, ...]) -> int:
        if self._blocked.get(key, 0.0) > time.time():
            return 0
        if not windows:
            return 1_000_000
        left = min(window.allowed - len(self._window(key, window)) for window in windows)
        return max(0, left - self._promised[key])

    def acquire(self, key: str, limits: Limits | float) -> float:
        """Wait until one more request for `key` keeps within its limits; returns the time waited."""
        windows = Limits.of(limits).windows
        waited = 0.0
        while True:
            with self._lock:
                at = self._free_at(key, windows, 0)
                now = time.time()
                if at <= now:
                    for seconds in self._sent.get(key, {}):
                        self._sent[key][seconds].append(now)
                    self._counts.setdefault(key, Counter())[int(now // 60)] += 1
                    return waited
            pause = max(at - now, 0.001)
            time.sleep(pause)
            waited += pause

    def room(self, key: str, limits: Limits | float) -> int:
        """How many more requests for `key` could start now, counting those promised."""
        with self._lock:
            return self._room(key, Limits.of(limits).windows)

    def budget(self, key: str, limits: Limits | float, *, jobs: int = 0, out: int = 0) -> Budget:
        """The key's standing in its long windows, for `jobs` jobs it has active now, `out` of
        them at the provider (each owed a read)."""
        long = Limits.of(limits).long_windows
        with self._lock:
            full, tight = None, False
            promised = self._promised[key]
            for window in long:
                left = window.allowed - len(self._window(key, window)) - promised
                if left - out - SPARE_READS < 2 and full is None:
                    full = window
                tight = tight or left - REQUESTS_PER_JOB * jobs < TIGHT_RESERVE * window.allowed
            room = self._room(key, long)
            return Budget(
                room=room,
                free_at=self._free_at(key, long, promised),
                creates=max(0, (room - out - SPARE_READS) // 2),
                create_free_at=self._free_at(key, long, promised + out + SPARE_READS + 1),
                full=full,
                tight=tight,
            )

    def refused(self, key: str, limits: Limits | float, retry_after: float | None = None) -> float:
        """The vendor answered 429: send nothing more for `key` until its Retry-After, or else
        until the oldest request of the longest window leaves it (at least a second). Returns
        the epoch seconds until which the key is blocked."""
        limits = Limits.of(limits)
        now = time.time()
        with self._lock:
            self._refusals.setdefault(key, Counter())[int(now // 60)] += 1
            if retry_after is not None:
                until = now + retry_after
            elif windows := limits.windows:
                longest = max(windows, key=lambda window: window.seconds)
                sent = self._window(key, longest)
                until = sent[0] + longest.seconds if sent else now
            else:
                until = now
            until = max(until, now + 1.0)
            self._blocked[key] = max(self._blocked.get(key, 0.0), until)
            return self._blocked[key]

    def usage(self, key: str, seconds: float = HOUR) -> tuple[int, int]:
        """Requests sent for `key`, and refusals, over the last `seconds` (by whole minutes)."""
        first = int((time.time() - seconds) // 60) + 1
        with self._lock:
            sent = sum(n for minute, n in self._counts.get(key, Counter()).items() if minute >= first)
            refused = sum(n for minute, n in self._refusals.get(key, Counter()).items() if minute >= first)
        return sent, refused

    def promise(self, key: str, limits: Limits | float) -> Permit:
        with self._lock:
            self._promised[key] += 1
        return Permit(self, key, Limits.of(limits))

    def _unpromise(self, key: str) -> None:
        with self._lock:
            self._promised[key] -= 1
            if self._promised[key] <= 0:
                del self._promised[key]

    def snapshot(self) -> dict[str, Any]:
        """What the next holder of the limits needs: each key's requests within its longest
        window, its block, and the last hour's counts."""
        now = time.time()
        oldest_minute = int((now - HOUR) // 60)
        with self._lock:
            sent, horizon = {}, {}
            for key, windows in self._sent.items():
                longest = max(windows, default=SHORT_HORIZON)
                if times := [t for t in windows.get(longest, ()) if now - t < longest]:
                    sent[key], horizon[key] = times, longest
            return {
                "sent": sent,
                "horizon": horizon,
                "blocked": {key: until for key, until in self._blocked.items() if until > now},
                "counts": _recent_minutes(self._counts, oldest_minute),
                "refusals": _recent_minutes(self._refusals, oldest_minute),
            }

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot and "sent" not in snapshot:  # an earlier version's snapshot: key → times
            snapshot = {"sent": snapshot}
        with self._lock:
            for key, times in snapshot.get("sent", {}).items():
                seconds = float(snapshot.get("horizon", {}).get(key, SHORT_HORIZON))
                windows = self._sent.setdefault(key, {})
                for length in {*windows, seconds}:
                    known = windows.get(length, deque())
                    mine = set(known)  # the same request known to both sides counts once
                    fresh = [t for t in times if time.time() - t < length and t not in mine]
                    windows[length] = deque(sorted([*known, *fresh]))
            for key, until in snapshot.get("blocked", {}).items():
                self._blocked[key] = max(self._blocked.get(key, 0.0), float(until))
            for field, counts in (("counts", self._counts), ("refusals", self._refusals)):
                for key, minutes in snapshot.get(field, {}).items():
                    counter = counts.setdefault(key, Counter())
                    for minute, n in minutes.items():
                        counter[int(minute)] = max(counter[int(minute)], int(n))


def _recent_minutes(counts: dict[str, Counter[int]], oldest: int) -> dict[str, dict[str, int]]:
    kept = {}
    for key, counter in counts.items():
        for minute in [m for m in counter if m < oldest]:
            del counter[minute]
        if counter:
            kept[key] = {str(minute): n for minute, n in counter.items()}
    return kept


def usage_in(snapshot: dict[str, Any], key: str, seconds: float = HOUR) -> tuple[int, int]:
    """`RateLimiter.usage` read from a snapshot (another process's limiter, e.g. the sweep's)."""
    limiter = RateLimiter()
    limiter.restore(snapshot)
    return limiter.usage(key, seconds)


class Permit:
    """One promised request: `use` before each request it makes (the first one turns the
    promise into a sent slot), `release` when done (returns an unused promise)."""

    def __init__(self, limiter: RateLimiter, key: str, limits: Limits) -> None:
        self.limiter, self.key, self.limits = limiter, key, limits
        self.promised = True

    def use(self) -> None:
        if self.promised:
            self.promised = False
            self.limiter._unpromise(self.key)
        self.limiter.acquire(self.key, self.limits)

    def release(self) -> None:
        if self.promised:
            self.promised = False
            self.limiter._unpromise(self.key)
