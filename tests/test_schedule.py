"""The polling schedule: pure functions, checked on their own and in a closed loop."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nanoweb.studio.jobs import schedule
from nanoweb.studio.jobs.schedule import Durations, Job, Vendor

pytestmark = pytest.mark.portable

NANOPHOTO = Vendor(min_interval=3.0, reports_progress=True)
CRUN_POLLED = Vendor(min_interval=1.0)
TEN_SECONDS = Durations.of([9.9, 10.0, 10.0, 10.1, 10.1, 10.2, 10.2, 10.3])


def test_progress_is_extrapolated_to_one_hundred_percent():
    assert schedule.progress_eta(30, 3.0) == 10.0
    assert schedule.progress_eta(50, 4.0) == 8.0
    quick = Job(elapsed=5.0, last_read=4.0, progress=50, progress_at=4.0)
    slow_history = Durations.of([12.0, 12.5, 13.0, 13.0, 14.0])

    when = schedule.next_read(quick, slow_history, NANOPHOTO)

    assert 8.0 < when <= 8.0 + schedule.margin(8.0), "this job is ahead of the history: read at its 100 %"


def test_progress_that_stalls_cannot_delay_a_read_past_the_history():
    stalled = Job(elapsed=6.0, last_read=6.0, progress=15, progress_at=6.0)  # says 40 s

    high = TEN_SECONDS.quantile(schedule.HIGH)
    assert schedule.next_read(stalled, TEN_SECONDS, NANOPHOTO) <= high + schedule.margin(high)
    assert schedule.next_read(stalled, Durations(), NANOPHOTO) == 9.0, "no history: every interval"


def test_a_job_progress_shows_a_little_slower_is_read_at_its_own_pace():
    slower = Job(elapsed=7.0, last_read=7.0, progress=60, progress_at=7.0)  # 11.7 s

    eta = 7.0 * 100 / 60
    assert schedule.next_read(slower, TEN_SECONDS, NANOPHOTO) == eta + schedule.margin(eta)


def test_progress_that_goes_backwards_or_reaches_100_while_pending_is_not_used():
    assert schedule.usable_progress(previous=40, reported=55)
    assert schedule.usable_progress(previous=40, reported=40), "a pause is still progress"
    assert not schedule.usable_progress(previous=40, reported=35), "backwards"
    assert not schedule.usable_progress(previous=40, reported=100), "100 % while not done"
    assert not schedule.usable_progress(previous=40, reported=95), "a bar held near the end keeps no pace"
    assert not schedule.usable_progress(previous=0, reported=0), "no figure"


def test_without_usable_progress_the_duration_schedule_decides():
    lying = Job(elapsed=4.0, last_read=4.0, progress=95, progress_at=None)  # its last figure was dropped
    honest_history_only = Job(elapsed=4.0, last_read=4.0)

    assert schedule.next_read(lying, TEN_SECONDS, NANOPHOTO) == schedule.next_read(
        honest_history_only, TEN_SECONDS, NANOPHOTO
    )
    assert 10.0 < schedule.next_read(lying, TEN_SECONDS, NANOPHOTO) < 10.6


@given(
    elapsed=st.floats(0, 900),
    since_read=st.floats(0, 60),
    progress=st.integers(0, 100),
    history=st.lists(st.floats(0.5, 120), max_size=40),
)
def test_a_job_is_never_read_sooner_than_the_vendor_allows_and_never_left_unread(
    elapsed, since_read, progress, history
):
    last_read = max(0.0, elapsed - since_read)
    job = Job(elapsed=elapsed, last_read=last_read, progress=progress, progress_at=last_read or None)

    when = schedule.next_read(job, Durations.of(history), NANOPHOTO)

    assert when >= last_read + NANOPHOTO.min_interval
    assert when >= elapsed
    assert when <= max(elapsed, last_read + NANOPHOTO.min_interval) + schedule.MAX_GAP + 1, "never stalled"


def test_the_first_read_counts_the_create_call():
    assert schedule.next_read(Job(elapsed=0.0), Durations(), NANOPHOTO) == 3.0


def test_a_tight_history_gets_one_read_just_after_nearly_every_job_is_done():
    when = schedule.next_read(Job(elapsed=0.0), TEN_SECONDS, CRUN_POLLED)

    assert TEN_SECONDS.quantile(0.95) <= when <= TEN_SECONDS.quantile(0.95) + 0.3


def test_a_progress_vendor_reads_once_early_enough_not_to_delay_the_read_at_the_end():
    probe = schedule.next_read(Job(elapsed=0.0), TEN_SECONDS, NANOPHOTO)
    after_probe = Job(elapsed=probe, last_read=probe, progress=int(probe * 10), progress_at=probe)
    final = schedule.next_read(after_probe, TEN_SECONDS, NANOPHOTO)

    assert final - probe >= NANOPHOTO.min_interval
    assert 10.0 < final < 10.6


def test_a_wide_history_gets_spaced_reads_not_a_read_every_second():
    wide = Durations.of(range(10, 31))
    reads, elapsed = [], 0.0
    while not reads or reads[-1] < 30:
        elapsed = schedule.next_read(Job(elapsed=elapsed, last_read=reads[-1] if reads else None), wide, CRUN_POLLED)
        reads.append(elapsed)

    assert reads[0] >= 10, "nothing is read before any job was ever done"
    assert len(reads) <= 7, "the vendor's loop at 1 s would read 30 times"
    spanned = [t for t in reads if t <= 30]
    assert max(b - a for a, b in zip(spanned, spanned[1:], strict=False)) <= 4.5, "no job waits long"


def test_with_callbacks_reads_are_a_rare_safety_net():
    assert schedule.next_read(Job(elapsed=0.0), TEN_SECONDS, Vendor(pushes=True)) >= schedule.PUSHED_SAFETY


def test_a_short_budget_goes_to_the_jobs_most_likely_done():
    odds = {"done-soon": 0.97, "fresh": 0.0, "probably": 0.8, "unknown": 0.5, "early": 0.1}

    assert schedule.allocate(list(odds), odds.get, room=2) == ["done-soon", "probably"]
    assert schedule.allocate(list(odds), odds.get, room=10) == ["done-soon", "probably", "unknown", "early", "fresh"]
    kept_back = schedule.allocate(list(odds), odds.get, room=5, likely_soon=3)
    assert kept_back == ["done-soon", "probably", "unknown"], "unlikely reads wait while likely ones come due"


def test_odds_follow_the_history_and_the_progress():
    assert schedule.done_odds(Job(elapsed=10.4), TEN_SECONDS, CRUN_POLLED) == 1.0
    assert schedule.done_odds(Job(elapsed=5.0), TEN_SECONDS, CRUN_POLLED) == 0.0
    assert schedule.done_odds(Job(elapsed=10.25, last_read=10.0), TEN_SECONDS, CRUN_POLLED) == 0.8
    ahead = Job(elapsed=9.0, last_read=6.0, progress=75, progress_at=6.0)  # 100 % at 8 s
    assert schedule.done_odds(ahead, TEN_SECONDS, NANOPHOTO) > schedule.LIKELY


def test_completion_estimates_stay_within_what_the_reads_prove():
    new = {"pushed": False, "history": Durations()}
    assert schedule.completion_estimate(done_read=11, scheduled=11, last_read=9, eta=10.2, **new) == 10.2
    assert schedule.completion_estimate(done_read=11, scheduled=11, last_read=9, eta=20, **new) == 10, "eta disproved"
    assert schedule.completion_estimate(done_read=11, scheduled=11, last_read=9, eta=None, **new) == 10
    known = {"pushed": False, "history": TEN_SECONDS}
    top_read = schedule.completion_estimate(done_read=10.4, scheduled=10.3, last_read=None, eta=None, **known)
    assert top_read is None, "a first read where nearly every job was done says nothing new"
    early_read = schedule.completion_estimate(done_read=10.2, scheduled=10.15, last_read=None, eta=None, **known)
    assert early_read == 10.1, "the history's median within the bounds, not the read"
    pushed = {"pushed": True, "history": TEN_SECONDS}
    assert schedule.completion_estimate(done_read=10.3, scheduled=10.1, last_read=3, eta=None, **pushed) == 10.1


def simulate(vendor: Vendor, true_durations: list[float], *, progress=lambda t, d: int(100 * t / d)):
    """Jobs one after another against the schedule, the history learning from each."""
    history: list[float] = []
    overheads, reads = [], []
    for duration in true_durations:
        durations = Durations.of(history[-50:])
        job, count, scheduled = Job(elapsed=0.0), 0, 0.0
        while True:
            scheduled = schedule.next_read(job, durations, vendor)
            count += 1
            if scheduled >= duration:
                break
            figure = progress(scheduled, duration)
            usable = schedule.usable_progress(job.progress, figure)
            job = Job(
                elapsed=scheduled,
                last_read=scheduled,
                progress=figure if usable else job.progress,
                progress_at=scheduled if usable else None,
            )
        overheads.append(scheduled - duration)
        reads.append(count)
        estimate = schedule.completion_estimate(
            done_read=scheduled,
            scheduled=scheduled,
            last_read=job.last_read,
            eta=job.eta,
            pushed=vendor.pushes,
            history=durations,
        )
        if estimate is not None:
            history.append(estimate)
    return sorted(overheads)[int(len(overheads) * 0.95) - 1], statistics.mean(reads), history


def test_in_a_closed_loop_a_progress_vendor_is_read_twice_and_late_by_a_fraction_of_a_second():
    rng = random.Random(7)
    p95, reads, history = simulate(NANOPHOTO, [10 + rng.uniform(0, 0.4) for _ in range(200)])

    assert p95 <= 0.5
    assert reads <= 2.2, "the vendor's own loop reads four times at 10 s"
    assert 9.9 <= statistics.median(history[-50:]) <= 10.5, "the history does not drift"


def test_in_a_closed_loop_the_history_follows_a_vendor_that_gets_faster_or_slower():
    rng = random.Random(3)
    slow = [20 + rng.uniform(0, 0.4) for _ in range(100)]
    fast = [10 + rng.uniform(0, 0.4) for _ in range(200)]
    p95, _, history = simulate(NANOPHOTO, slow + fast)
    assert 9.9 <= statistics.median(history[-50:]) <= 10.5, "it learned the new, shorter durations"

    p95, _, history = simulate(CRUN_POLLED, fast + slow + slow)
    assert 19.9 <= statistics.median(history[-50:]) <= 20.5, "it learned the new, longer durations"


def test_in_a_closed_loop_late_reads_do_not_make_the_history_creep_later():
    rng = random.Random(11)
    _, reads, history = simulate(CRUN_POLLED, [10 + rng.uniform(0, 0.4) for _ in range(400)])

    assert statistics.median(history[-50:]) <= 10.4
    assert reads <= 1.3


def test_in_a_closed_loop_a_vendor_whose_progress_misbehaves_still_finishes_every_job():
    rng = random.Random(5)
    stuck_then_backwards = lambda t, d: 100 if t < d / 2 else 15  # noqa: E731
    p95, reads, _ = simulate(NANOPHOTO, [10 + rng.uniform(0, 2) for _ in range(100)], progress=stuck_then_backwards)

    assert p95 <= NANOPHOTO.min_interval + 0.5
    assert reads <= 4


def test_the_plan_holds_while_time_passes_until_the_read_is_due():
    for vendor in (NANOPHOTO, CRUN_POLLED):
        planned = schedule.next_read(Job(elapsed=0.0), TEN_SECONDS, vendor)
        for elapsed in (0.5, planned / 2, planned - 0.01):
            assert schedule.next_read(Job(elapsed=elapsed), TEN_SECONDS, vendor) == planned
        assert schedule.next_read(Job(elapsed=planned + 0.2), TEN_SECONDS, vendor) == planned + 0.2, "due: now"
    probe = schedule.next_read(Job(elapsed=0.0), TEN_SECONDS, NANOPHOTO)
    late = schedule.next_read(Job(elapsed=probe + 2), TEN_SECONDS, NANOPHOTO)
    assert late > 10.0, "a progress read the budget delayed too long gives way to the read at the end"


TIGHT_NANOPHOTO = Vendor(min_interval=3.0, reports_progress=True, tight=True, typical=10.0)


def test_a_read_that_finds_the_job_running_places_the_next_from_its_progress_not_at_the_interval():
    found_running = Job(elapsed=6.0, last_read=6.0, progress=60, progress_at=6.0)  # 100 % at 10 s

    when = schedule.next_read(found_running, TEN_SECONDS, NANOPHOTO)

    assert when > 6.0 + NANOPHOTO.min_interval, "not blindly at the vendor's interval"
    assert 10.0 < when <= 10.0 + schedule.margin(10.0)


def test_a_read_that_finds_the_job_running_past_the_history_narrows_it_to_the_slower_jobs():
    wide = Durations.of([8.0, 8.5, 9.0, 9.5, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0])
    unread = schedule.next_read(Job(elapsed=0.0), wide, CRUN_POLLED)
    after_a_miss = schedule.next_read(Job(elapsed=11.0, last_read=11.0), wide, CRUN_POLLED)

    assert unread < 11.0 < after_a_miss, "the read at 11 s rules out every job done by then"
    assert after_a_miss <= 20.0 + schedule.margin(20.0)


def test_on_a_tight_budget_a_job_gets_one_read_where_nearly_every_known_job_was_done():
    high = TEN_SECONDS.quantile(schedule.HIGH)

    assert schedule.next_read(Job(elapsed=0.0), TEN_SECONDS, TIGHT_NANOPHOTO) == high + schedule.margin(high)
    wide = Durations.of(range(10, 31))
    first = schedule.next_read(Job(elapsed=0.0), wide, Vendor(min_interval=1.0, tight=True))
    assert first >= wide.quantile(schedule.HIGH), "no early progress read, no spaced reads of a wide history"
    assert schedule.next_read(Job(elapsed=0.0), wide, Vendor(min_interval=1.0)) < 15, "as a roomy budget would"


def test_on_a_tight_budget_with_no_history_the_first_read_waits_for_the_typical_duration():
    assert schedule.next_read(Job(elapsed=0.0), Durations(), TIGHT_NANOPHOTO) == 10.0
    assert schedule.next_read(Job(elapsed=0.0), Durations(), NANOPHOTO) == 3.0, "a roomy budget reads early"
    documented = Vendor(min_interval=3.0, reports_progress=True, typical=10.0)
    assert schedule.next_read(Job(elapsed=0.0), Durations(), documented) == 5.0, "halfway, for a steadier pace"


def test_in_a_closed_loop_a_tight_budget_reads_each_job_at_most_twice_and_mostly_once():
    rng = random.Random(7)
    history: list[float] = []
    counts = []
    for _ in range(40):
        duration = rng.uniform(9.5, 11.0)
        reads, job = 0, Job(elapsed=0.0)
        while True:
            when = schedule.next_read(job, Durations.of(history[-50:]), TIGHT_NANOPHOTO)
            reads += 1
            if when >= duration:
                break
            progress = int(100 * when / duration)
            job = Job(elapsed=when, last_read=when, progress=progress, progress_at=when)
        history.append(duration)
        counts.append(reads)

    assert max(counts) <= 2
    assert statistics.mean(counts) <= 1.3
