from __future__ import annotations

import threading
import time

from nanoweb.lib.ratelimit import RateLimiter


def busiest_second(times: list[float]) -> int:
    """The most requests in any one-second window."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t - start < 1) for i, start in enumerate(times))


def test_no_one_second_window_holds_more_than_the_limit_across_threads():
    limiter, sent = RateLimiter(), []

    def client():
        for _ in range(15):
            limiter.acquire("account", 20)
            sent.append(time.time())

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(sent) == 60
    assert busiest_second(sent) <= 20
    assert sent[-1] - sent[0] >= 2, "60 requests at 20/s take at least two more windows"


def test_a_limit_below_one_per_second_spaces_requests_out():
    limiter = RateLimiter()
    assert limiter.acquire("slow", 0.8) == 0
    assert 1.2 <= limiter.acquire("slow", 0.8) <= 1.5, "one request per 1.25 s"


def test_the_next_sweep_inherits_the_recent_requests():
    first, second = RateLimiter(), RateLimiter()
    for _ in range(5):
        first.acquire("a", 5)
    second.restore(first.snapshot())
    started = time.monotonic()
    second.acquire("a", 5)
    assert time.monotonic() - started >= 0.9, "the window is full: the successor waits"


def test_promised_requests_count_against_the_room_until_sent_or_released():
    limiter = RateLimiter()
    limiter.acquire("a", 5)
    assert limiter.room("a", 5) == 4
    first, second = limiter.promise("a", 5), limiter.promise("a", 5)
    assert limiter.room("a", 5) == 2, "two slots are spoken for"

    first.use()
    second.release()
    assert limiter.room("a", 5) == 3, "one was sent, one given back"
    first.release()
    assert limiter.room("a", 5) == 3, "releasing a used permit changes nothing"
