from __future__ import annotations

import json
import threading
import time

from nanoweb.lib import ratelimit
from nanoweb.lib.ratelimit import HOUR, Limits, RateLimiter


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


def spend(limiter: RateLimiter, key: str, times: list[float]) -> None:
    """Requests `key` made at these moments (seconds ago), as a relay would hand them on."""
    now = time.time()
    limiter.restore({"sent": {key: [now - ago for ago in times]}, "horizon": {key: HOUR}})


def test_an_hourly_limit_counts_every_request_of_the_last_hour():
    limiter, hourly = RateLimiter(), Limits(per_second=10, per_hour=100)
    spend(limiter, "nanophoto", [3599.0] + [60.0] * 98)

    assert limiter.room("nanophoto", hourly) == 1
    limiter.acquire("nanophoto", hourly)
    assert limiter.room("nanophoto", hourly) == 0
    budget = limiter.budget("nanophoto", hourly)
    assert budget.full is not None and hourly.describe(budget.full) == "100 requests an hour"
    assert 0 < budget.free_at - time.time() <= 1.1, "the oldest request leaves the window in a second"


def test_a_minute_limit_and_a_second_limit_hold_together():
    limiter, both = RateLimiter(), Limits(per_second=5, per_minute=7)

    assert limiter.room("k", both) == 5, "the second's limit is the smaller now"
    for _ in range(5):
        limiter.acquire("k", both)
    assert limiter.room("k", both) == 0
    started = time.monotonic()
    limiter.acquire("k", both)
    limiter.acquire("k", both)
    assert 0.9 <= time.monotonic() - started <= 1.5, "the next second allows two more"
    assert limiter.room("k", both) == 0, "then the minute's seven are spent"
    assert 58 <= limiter.budget("k", both).free_at - time.time() <= 61


def test_a_budget_is_tight_before_it_is_spent():
    limiter, hourly = RateLimiter(), Limits(per_hour=100)

    assert not limiter.budget("a", hourly, jobs=2).tight
    assert limiter.budget("a", hourly, jobs=9).tight, "27 requests for nine jobs would leave less than three quarters"
    spend(limiter, "b", [10.0] * 30)
    assert limiter.budget("b", hourly, jobs=0).tight
    assert not limiter.budget("c", Limits(per_second=10), jobs=500).tight, "a per-second limit is never a budget"


def test_a_refusal_blocks_the_key_until_retry_after_or_the_window_frees():
    limiter, hourly = RateLimiter(), Limits(per_hour=100)

    until = limiter.refused("a", hourly, retry_after=30)
    assert 29 <= until - time.time() <= 31 and limiter.room("a", hourly) == 0
    spend(limiter, "b", [3000.0, 10.0])
    until = limiter.refused("b", hourly)
    assert 599 <= until - time.time() <= 601, "no Retry-After: until our oldest request leaves the hour"
    assert limiter.usage("a") == (0, 1) and limiter.usage("b") == (0, 1)


def test_a_relay_hands_on_the_hour_its_block_and_its_counts():
    first, hourly = RateLimiter(), Limits(per_second=10, per_hour=100)
    for _ in range(3):
        first.acquire("nanophoto", hourly)
    first.refused("nanophoto", hourly, retry_after=20)
    snapshot = json.loads(json.dumps(first.snapshot()))  # as the lease stores it

    second = RateLimiter()
    second.restore(snapshot)

    assert second.room("nanophoto", hourly) == 0, "blocked by the refusal"
    assert second.budget("nanophoto", Limits(per_hour=4)).room == 0, "three sent plus the block"
    assert second.usage("nanophoto") == (3, 1)
    assert ratelimit.usage_in(snapshot, "nanophoto") == (3, 1)
    assert len(snapshot["sent"]["nanophoto"]) == 3, "the hour's requests, not only the last two seconds"


def test_a_snapshot_of_the_earlier_kind_is_still_understood():
    limiter = RateLimiter()
    limiter.restore({"a": [time.time()]})

    assert limiter.room("a", 1) == 0


def test_creates_go_only_while_the_window_keeps_a_read_for_every_job_out_and_a_spare():
    limiter, hourly = RateLimiter(), Limits(per_hour=100)
    spend(limiter, "a", [600.0] * 88)  # twelve left

    assert limiter.budget("a", hourly, out=0).creates == 5, "each with its create and its read, two kept spare"
    assert limiter.budget("a", hourly, out=4).creates == 3
    spent = limiter.budget("a", hourly, out=9)
    assert spent.creates == 0 and spent.room == 12, "the reads still go"
    assert spent.full is not None and 2999 <= spent.create_free_at - time.time() <= 3001


def test_a_window_keeps_no_more_requests_than_it_allows():
    limiter, limits = RateLimiter(), Limits(per_second=1000, per_hour=50)
    spend(limiter, "busy", [1000.0 - n for n in range(500)])  # a limit lowered from a busier past

    assert limiter.room("busy", limits) == 0
    assert len(limiter.snapshot()["sent"]["busy"]) == 50, "older ones no longer decide anything"
    assert 3049 <= limiter.budget("busy", limits).free_at - time.time() <= 3051, "when the 50th newest leaves"
