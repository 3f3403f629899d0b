"""The page's one live channel: what changed since the versions the page holds, and nothing else."""

from __future__ import annotations

from django.urls import reverse

from nanoweb.studio.models import Generation

Status = Generation.Status


def running_job(owner, account, prompt="a lighthouse", **fields) -> Generation:
    return Generation.objects.create(
        owner=owner, prompt=prompt, account=account, model="google/nano-banana-2", status=Status.RUNNING, **fields
    )


def ask(client, view: str, *jobs: Generation, versions: dict | None = None):
    versions = versions or {}
    held = ",".join(f"{job.pk}.{versions.get(job.pk, job.version)}" for job in jobs)
    return client.get(reverse(f"live_{view}"), {"v": held})


def test_nothing_changed_is_a_cheap_204(owner_client, owner, crun_account):
    jobs = [running_job(owner, crun_account, prompt=f"job {n}") for n in range(3)]

    response = ask(owner_client, "cards", *jobs)

    assert response.status_code == 204
    assert response.content == b""


def test_only_the_changed_cards_come_back_as_out_of_band_swaps(owner_client, owner, crun_account):
    quiet, finished, progressed = (running_job(owner, crun_account, prompt=f"job {n}") for n in range(3))
    finished.advance(Status.RUNNING, Status.FAILED, error_message="The provider is down.")
    Generation.objects.filter(pk=progressed.pk).update(progress=40, version=progressed.version + 1)

    response = ask(owner_client, "cards", quiet, finished, progressed, versions={finished.pk: 0, progressed.pk: 0})

    assert response.status_code == 200
    html = response.text
    assert f'id="job-{quiet.pk}"' not in html
    assert html.count('hx-swap-oob="true"') == 3, "two cards, and the budget line the refund moved"
    assert '<span class="muted" id="budget-left" hx-swap-oob="true">· You have 20.00 USD left this month' in html
    assert f'id="job-{finished.pk}"' in html and "The provider is down." in html
    assert f'data-live="{finished.pk}.' not in html, "a finished card is no longer watched"
    assert f'data-live="{progressed.pk}.1"' in html and 'value="40"' in html


def test_a_watcher_learns_nothing_of_a_job_made_private_but_that_it_is_gone(
    client, owner, teammate, staff, crun_account
):
    job = running_job(owner, crun_account, prompt="secret plans")
    client.force_login(teammate)
    assert ask(client, "detail", job).status_code == 204

    Generation.objects.filter(pk=job.pk).update(private=True, version=job.version + 1)

    for view in ("cards", "detail"):
        response = ask(client, view, job)
        assert response.status_code == 200
        assert "secret plans" not in response.text
    assert 'hx-swap-oob="delete"' in ask(client, "cards", job).text
    client.force_login(staff)
    assert "secret plans" in ask(client, "detail", job, versions={job.pk: 0}).text


def test_the_detail_page_gets_its_own_block_back(owner_client, owner, crun_account):
    job = running_job(owner, crun_account)
    page = owner_client.get(reverse("generation_detail", args=[job.pk]))
    assert f'data-live="{job.pk}.0"' in page.text and reverse("live_detail") in page.text

    job.advance(Status.RUNNING, Status.CANCELED, error_message="Canceled.")
    response = ask(owner_client, "detail", job, versions={job.pk: 0})

    assert f'<div class="detail" id="detail-{job.pk}"' in response.text
    assert "Canceled." in response.text and "data-live=" not in response.text


def test_malformed_versions_are_ignored_and_unknown_jobs_are_gone(owner_client):
    assert owner_client.get(reverse("live_cards"), {"v": "x.1,,12,1.y"}).status_code == 204
    response = owner_client.get(reverse("live_cards"), {"v": "99999999.3"})
    assert response.text.strip() == '<div id="job-99999999" hx-swap-oob="delete"></div>'


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("live_cards"), {"v": "1.0"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
