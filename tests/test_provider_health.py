"""Provider health over a known set of jobs and attempts, and the staff page that shows it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from nanoweb.providers import health
from nanoweb.providers.models import Attempt
from nanoweb.studio.models import Generation

Outcome = Attempt.Outcome


@pytest.fixture(autouse=True)
def _fresh_figures():
    cache.clear()  # the page's figures are cached briefly, in a cache the tests share


@pytest.fixture
def known(owner, make_account):
    """crun: three jobs served (1K in 20 s and 40 s, 2K in 60 s), one rate-limited then moved to
    gemini (served there in 30 s), one blocked; and one 1K job two days ago, served in 25 s."""
    crun, gemini = make_account("crun"), make_account("gemini")
    now = timezone.now()

    def job(ago: timedelta, took: float, resolution: str, status: str, attempts: list[tuple]) -> None:
        created = now - ago
        generation = Generation.objects.create(
            owner=owner, prompt="p", account=attempts[-1][0], model="m", resolution=resolution, status=status,
            created_at=created, finished_at=created + timedelta(seconds=took),
        )  # fmt: skip
        for n, (account, outcome, kind) in enumerate(attempts):
            Attempt.objects.create(generation=generation, account=account, model_id="m", outcome=outcome,
                                   error_kind=kind, message=f"{kind} said so" if kind else "",
                                   started_at=created + timedelta(seconds=n))  # fmt: skip

    job(timedelta(minutes=10), 20, "1K", "succeeded", [(crun, Outcome.SUCCEEDED, "")])
    job(timedelta(minutes=20), 40, "1K", "succeeded", [(crun, Outcome.SUCCEEDED, "")])
    job(timedelta(minutes=30), 60, "2K", "succeeded", [(crun, Outcome.SUCCEEDED, "")])
    job(timedelta(minutes=5), 30, "1K", "succeeded", [(crun, Outcome.RETRIED, "rate_limited"),
        (crun, Outcome.MOVED, "unavailable"), (gemini, Outcome.SUCCEEDED, "")])  # fmt: skip
    job(timedelta(minutes=3), 5, "1K", "failed", [(crun, Outcome.FAILED, "content_blocked")])
    job(timedelta(days=2), 25, "1K", "succeeded", [(crun, Outcome.SUCCEEDED, "")])
    return crun, gemini


def by_account(window: str) -> dict[str, health.AccountHealth]:
    return {row.account.kind: row for row in health.figures(window)}


def test_health_figures_match_a_known_set_of_jobs(known):
    hour = by_account("hour")
    crun, gemini = hour["crun"], hour["gemini"]
    # The blocked prompt is the prompt's failure: 3 served of 4 the account could have served.
    assert (crun.jobs, crun.ended, crun.succeeded, crun.success_rate) == (5, 4, 3, 0.75)
    assert crun.times == {"1K": (2, 20.0, 40.0), "2K": (1, 60.0, 60.0)}
    assert crun.failures == {"content_blocked": 1, "rate_limited": 1, "unavailable": 1}
    assert crun.rate_limited == 1
    assert (crun.last_error.kind, crun.last_error.message) == ("content_blocked", "content_blocked said so")
    assert (gemini.jobs, gemini.success_rate, gemini.times, gemini.failures) == (1, 1.0, {"1K": (1, 30.0, 30.0)}, {})

    assert by_account("day")["crun"].jobs == 5, "the two-day-old job is outside the day"
    week = by_account("week")["crun"]
    assert (week.jobs, week.succeeded, week.ended) == (6, 4, 5)
    assert week.times["1K"] == (3, 25.0, 40.0), "nearest-rank p50 and p95 of 20, 25, 40 s"


def test_the_staff_page_shows_them_and_members_cannot_see_it(client, staff, owner, known):
    client.force_login(owner)
    assert client.get(reverse("provider_health")).status_code == 403

    client.force_login(staff)
    page = client.get(reverse("provider_health"), {"window": "hour"}).text
    crun_row = page.split(f'id="health-{known[0].pk}"')[1].split("</tr>")[0]
    assert '75% <span class="muted">(3/4)</span>' in crun_row
    assert "1K: 20.0 s / 40.0 s" in crun_row and "2K: 60.0 s / 60.0 s" in crun_row
    assert "rate_limited: 1" in crun_row and "content_blocked said so" in crun_row
    assert client.get(reverse("provider_health"), {"window": "<script>"}).status_code == 200


def test_an_account_whose_last_creates_all_failed_is_tried_last(owner, make_account):
    crun, gemini = make_account("crun"), make_account("gemini")
    job = Generation.objects.create(owner=owner, prompt="p", account=crun, model="m")
    for _ in range(health.STRUGGLING_AFTER):
        Attempt.objects.create(
            generation=job, account=crun, model_id="m", outcome=Outcome.MOVED, error_kind="unavailable"
        )
    assert health.struggling({crun.pk, gemini.pk}) == {crun.pk}
    Attempt.objects.create(generation=job, account=crun, model_id="m", outcome=Outcome.SUCCEEDED)
    assert health.struggling({crun.pk, gemini.pk}) == set()


def test_balances_are_read_on_a_schedule_and_shown_with_their_age(client, staff, make_account):
    from django_q.models import Schedule

    from nanoweb.providers import status

    crun = make_account("crun")
    make_account("gemini")  # no balance endpoint
    assert Schedule.objects.filter(func="nanoweb.providers.status.check_balances", minutes=10).exists()

    assert list(status.check_balances()) == [crun.name], "only vendors with a balance endpoint"
    crun.refresh_from_db()
    assert int(crun.balance) > 0 and crun.balance_checked_at is not None
    client.force_login(staff)
    row = client.get(reverse("provider_health")).text.split(f'id="health-{crun.pk}"')[1].split("</tr>")[0]
    assert crun.balance in row and "read 0" in row
