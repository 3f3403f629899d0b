"""When to read a job's status next, and which reads get an account's request budget.

Pure functions, no database: the pipeline hands in what it knows (the account's recent
durations, the job's elapsed time, its last read, its last progress figure, the vendor's
rules) and gets back a time. All times are seconds since the job was submitted.

- **Durations** are the account's recent jobs' provider durations (submission to done):
  the next read goes where the remaining distribution says the job is likely done, one
  read when the distribution is tight, a few spaced reads when it is wide.
- **Progress** (nanophoto, apiframe) extrapolated to 100 % refines that per job. Progress
  that goes backwards or says 100 % while the job is pending is ignored: the duration
  schedule then decides alone, so a misbehaving vendor cannot stall a job.
- **The vendor's minimum interval** (nanophoto documents a read every 3–5 s) is never
  undercut, counting the create call as the first request.
- **The rate budget**: when an account has fewer requests left in its window than jobs
  due, the likeliest to be done go first, and reads unlikely to find anything wait while
  likely ones are due within the next second. When its budget over a minute or an hour is
  tight (`Vendor.tight`, nanophoto's 100 requests an hour), each job gets one read where
  nearly every known job was done (no early progress read, no spaced reads of a wide
  history); only a read that finds the job running buys it another, placed from what that
  read said.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

MIN_SAMPLES = 3  # fewer recent durations than this say nothing about the next job
HIGH = 0.98  # read when this share of the jobs still running at that age would be done
CONFIRMS = 0.9  # a first read this late that found the job done only confirms the history
LOW = 0.05
READ_COST = 0.25  # seconds of waiting one status read is worth: spaces reads of a wide distribution
# The progress read comes this long before the vendor's interval requires: a sweep a little
# late with it must not push the read at the end past the job's end (at 0.5 s, a probe read
# 0.4 s late put the next read 0.5 s after the job was done, the interval forbidding sooner).
PROBE_SLACK = 1.5
PUSHED_SAFETY = 10.0  # with completion callbacks, reads are a safety net at least this far apart
PLAUSIBLE = 1.25  # progress may put a read this far past the longest job in the history
LIKELY = 0.5  # odds from which a read counts as likely to find the job done
LOOKAHEAD = 1.0  # seconds: likely reads due this soon keep budget from unlikely ones
MAX_GAP = 15.0  # the longest wait between reads of a job nobody can predict
PACE_UNTIL = 90  # progress figures from here on say "nearly done", not how fast


def margin(estimate: float) -> float:
    """How long after a predicted moment to read: the vendor publishes the result a moment
    after its progress reaches 100 %, and known durations come from such predictions."""
    return 0.1 + 0.01 * estimate


@dataclass(frozen=True)
class Durations:
    """An account's recent provider durations in seconds, ascending."""

    samples: tuple[float, ...] = ()

    @classmethod
    def of(cls, values: Iterable[float]) -> Durations:
        return cls(tuple(sorted(v for v in values if v >= 0)))

    def __len__(self) -> int:
        return len(self.samples)

    def after(self, elapsed: float) -> Durations:
        """The durations of jobs that were still running at `elapsed`."""
        return Durations(self.samples[bisect_right(self.samples, elapsed) :])

    def quantile(self, q: float) -> float:
        """Linear interpolation between the nearest samples (q in 0..1)."""
        if not self.samples:
            raise ValueError("no samples")
        position = q * (len(self.samples) - 1)
        below = math.floor(position)
        above = min(below + 1, len(self.samples) - 1)
        return self.samples[below] + (self.samples[above] - self.samples[below]) * (position - below)

    def share_done_by(self, t: float) -> float:
        """The share of jobs done by `t` (0 with no samples)."""
        return bisect_right(self.samples, t) / len(self.samples) if self.samples else 0.0


@dataclass(frozen=True)
class Vendor:
    """What the vendor documents about reading statuses."""

    min_interval: float = 1.0  # seconds between two requests about one job
    reports_progress: bool = False
    pushes: bool = False  # completion callbacks arrive: reads are only a safety net
    tight: bool = False  # the account's budget is short: one read a job, where it is likeliest done
    typical: float | None = None  # the vendor's documented shortest typical duration (seconds)


@dataclass(frozen=True)
class Job:
    """What the schedule knows of one job, in seconds since its submission."""

    elapsed: float  # now
    last_read: float | None = None  # the last status read (it found the job unfinished)
    progress: int = 0  # the last usable progress figure, 0-100
    progress_at: float | None = None  # when that figure was reported; None: not usable

    @property
    def eta(self) -> float | None:
        return progress_eta(self.progress, self.progress_at)


def usable_progress(previous: int, reported: int) -> bool:
    """A figure worth extrapolating: above 0 and below PACE_UNTIL, and not below what the
    vendor said before. Near the end bars stop keeping pace (held at 95 % until done, as the
    simulator's is): a read just before completion that found 95 % put that job's end half a
    second late, and with it the history's tail, and every read after it."""
    return 0 < reported < PACE_UNTIL and reported >= previous


def progress_eta(progress: int, at: float | None) -> float | None:
    """When the job reaches 100 % at its pace so far, counted from its submission."""
    if at is None or at <= 0 or not 0 < progress < 100:
        return None
    return at * 100 / progress


def centred_eta(progress: int, at: float | None) -> float | None:
    """`progress_eta` for the history: vendors drop the fraction of a percent (30.9 % reads
    30), which puts the extrapolated end late by up to a 30th at 30 %; reads keep that
    margin, the history must not (its 98th percentile places every first read)."""
    if progress_eta(progress, at) is None or at is None:
        return None
    return at * 100 / (progress + 0.5)


def earliest_read(job: Job, vendor: Vendor) -> float:
    """Never closer to the previous request about this job than the vendor allows; the
    create call counts as the first."""
    return max(job.elapsed, (job.last_read or 0.0) + vendor.min_interval)


def duration_target(
    durations: Durations, running_at: float, min_interval: float, *, tight: bool = False
) -> float | None:
    """From the account's history alone: when to read a job known to be running at
    `running_at`.

    A tight distribution gets one read where nearly all of it is done; a wide one gets
    reads spaced so that waiting and reading cost about the same (step ≈ √(2·cost·spread));
    with a `tight` budget, one read where nearly all of it is done, however wide. None when the history has nothing to say about a job this old.
    """
    rest = durations.after(running_at)
    if len(rest) < MIN_SAMPLES:
        return None
    low, high = rest.quantile(LOW), rest.quantile(HIGH)
    if tight:
        return high + margin(high)
    step = max(min_interval, math.sqrt(2 * READ_COST * (high - low)))
    target = min(high, low + step)
    return target + margin(target)


def unpredicted_gap(running_at: float, vendor: Vendor) -> float:
    """Seconds to the next read of a job nothing predicts: often at first, rarer with age.
    Where the vendor documents a typical duration, the first read waits for it on a tight
    budget, and for half of it otherwise: a progress figure read at 30 % triples any error
    in when the job began in its extrapolation, at 50 % only doubles it."""
    if running_at == 0 and vendor.typical:
        return max(vendor.min_interval, vendor.typical if vendor.tight else vendor.typical / 2)
    return max(vendor.min_interval, min(0.2 * running_at, MAX_GAP))


def next_read(job: Job, durations: Durations, vendor: Vendor) -> float:
    """When to read this job's status next, in seconds since its submission: planned from
    its last read (so the answer does not change as time passes until the read is due),
    at most MAX_GAP after it (unless the budget is tight), and never sooner than the vendor
    allows."""
    earliest = earliest_read(job, vendor)
    since = job.last_read or 0.0  # when the job was last known to be running
    if vendor.pushes:
        typical = durations.quantile(0.5) if len(durations) >= MIN_SAMPLES else 0.0
        when = max(since + PUSHED_SAFETY, 2 * typical)
    else:
        target = duration_target(durations, since, vendor.min_interval, tight=vendor.tight)
        when = target if target is not None else since + unpredicted_gap(since, vendor)
        if vendor.reports_progress and (eta := job.eta) is not None:
            # The job's own pace decides while it is plausible (within what the history has
            # seen); otherwise it may only bring the read earlier, so that a vendor whose
            # figure stalls or sits at a fixed value cannot push a read past the history.
            by_progress = eta + margin(eta)
            rest = durations.after(since)
            plausible = len(rest) >= MIN_SAMPLES and by_progress <= rest.samples[-1] * PLAUSIBLE
            when = by_progress if plausible else min(when, by_progress)
        elif vendor.reports_progress and target is not None and job.last_read is None and not vendor.tight:
            # One early read for the job's own progress, placed so that it does not delay
            # the read at the target: it corrects the history for this job (a bigger image,
            # a busy vendor) and measures when this job really finishes. Too late for
            # that (the budget was short), it is skipped.
            probe = target - vendor.min_interval - PROBE_SLACK
            if probe + PROBE_SLACK >= earliest:
                when = probe
    if vendor.tight:  # one read where the history says the job is done, however far
        return max(earliest, when)
    return max(earliest, min(when, since + MAX_GAP))


def done_odds(job: Job, durations: Durations, vendor: Vendor) -> float:
    """How likely a read now finds the job done (for sharing a short budget)."""
    if vendor.pushes:
        return 0.9  # a callback woke it (safety-net reads are rare)
    eta = job.eta if vendor.reports_progress else None
    if eta is not None:
        return 0.9 if job.elapsed >= eta else 0.1
    if len(durations) < MIN_SAMPLES:
        return LIKELY  # nothing known: neither first nor last
    before = durations.share_done_by(job.last_read or 0.0)
    if before >= 1.0:
        return LIKELY  # older than every known job: it may end any moment
    return (durations.share_done_by(job.elapsed) - before) / (1.0 - before)


def completion_estimate(
    *, done_read: float, scheduled: float, last_read: float | None, eta: float | None, pushed: bool, history: Durations
) -> float | None:
    """When the job the read found done most likely finished at the vendor (seconds since
    submission), for the account's history; None when the reads say nothing new.

    The reads only bound it: after the last read that found it running, at or before this
    one. Progress extrapolation (when it agrees with those bounds), or a completion callback
    (it scheduled this read), place it inside them. Otherwise the history's own median
    inside the bounds (one step of the usual estimator for interval-censored data), or their
    middle when no known job fell there. A first read planned where nearly every known job
    was done, that found this one done, only confirms the history: counting it would pull
    the history's tail in toward its middle, and with it the reads, too early.
    """
    lower = last_read if last_read is not None else 0.0

    def within(t: float) -> float:
        return min(max(t, lower), done_read)

    if eta is not None and lower < eta <= done_read:
        return eta
    if pushed:
        return within(scheduled)
    if last_read is None and len(history) >= MIN_SAMPLES and history.share_done_by(scheduled) >= CONFIRMS:
        return None
    inside = [d for d in history.after(lower).samples if d <= done_read]
    return inside[len(inside) // 2] if inside else (lower + done_read) / 2


T = TypeVar("T")


def allocate(due: Sequence[T], odds: Callable[[T], float], room: int, likely_soon: int = 0) -> list[T]:
    """The due requests to send now, within `room` requests: the likeliest first; unlikely
    ones only while budget remains for the `likely_soon` likely reads due within LOOKAHEAD."""
    chosen: list[T] = []
    spare = room - likely_soon
    for item in sorted(due, key=odds, reverse=True):
        if len(chosen) >= room or (odds(item) < LIKELY and len(chosen) >= spare):
            break
        chosen.append(item)
    return chosen
