"""Who may do what with a job is one rule (`Generation.allowed`): its card and page offer
exactly what its views accept. And one cost line, wherever a job's price is shown."""

from __future__ import annotations

from django.urls import reverse

from nanoweb.credits import ledger
from nanoweb.providers.base import ErrorKind, ProviderError
from nanoweb.studio.models import Generation
from tests.conftest import start_job, succeed

Status = Generation.Status


def offered(client, job: Generation) -> set[str]:
    """The actions a person is offered on the job's page and card."""
    page = client.get(job.get_absolute_url()).text + client.get(reverse("generation_card", args=[job.pk])).text
    words = {
        "cancel": f'aria-label="Cancel job {job.pk}"',
        "again": ">Run again</button>",
        "delete": ">Delete</button>",
        "share": "Shared: make private",
    }
    return {action for action, marker in words.items() if marker in page}


def accepted(client, job: Generation) -> set[str]:
    """The actions the job's views accept from this person (404 for the others). The job has
    ended (cancel changes nothing), "again" starts another, and sharing is put back."""
    urls = {
        "cancel": reverse("generation_cancel", args=[job.pk]),
        "again": reverse("try_again", args=[job.pk]),
        "share": reverse("toggle_private", args=[job.pk]),
    }
    found = {action for action, url in urls.items() if client.post(url).status_code != 404}
    Generation.objects.filter(pk=job.pk).update(private=False)
    return found


def test_the_owner_teammates_and_staff_are_offered_what_the_views_accept(client, owner, teammate, staff, crun_account):
    [running] = start_job(owner, crun_account, "google/nano-banana-2", "a kite")
    [done] = start_job(owner, crun_account, "google/nano-banana-2", "a boat")
    succeed(done)

    client.force_login(owner)
    assert offered(client, running) == {"cancel", "delete", "share"}
    assert offered(client, done) == {"again", "delete", "share"}
    assert accepted(client, done) == {"cancel", "again", "share"}

    client.force_login(teammate)
    assert offered(client, running) == set() and offered(client, done) == set()
    assert accepted(client, done) == set()
    assert client.post(reverse("delete_generation", args=[done.pk])).status_code == 404

    client.force_login(staff)
    assert offered(client, running) == {"cancel", "delete"}
    assert offered(client, done) == {"delete"}
    assert accepted(client, done) == {"cancel"}
    assert client.post(reverse("delete_generation", args=[done.pk])).status_code == 302
    assert Generation.objects.get(pk=done.pk).deleted_at is not None


def test_a_running_job_can_not_be_run_again_until_it_ends(owner_client, owner, crun_account):
    [running] = start_job(owner, crun_account, "google/nano-banana-2", "a kite")
    assert running.allowed(owner).again is False
    assert owner_client.post(reverse("try_again", args=[running.pk])).status_code == 404
    assert Generation.objects.count() == 1


def test_the_cost_line_says_reserved_then_charged_or_refunded_on_the_page_and_the_credit_review(
    client, owner, staff, crun_account
):
    [running, done, failed] = (
        start_job(owner, crun_account, "google/nano-banana-2", prompt)[0] for prompt in ["a kite", "a boat", "a fox"]
    )
    succeed(done)
    failed.fail(Status.QUEUED, ProviderError(ErrorKind.UNAVAILABLE, "The provider is down."))
    price = ledger.money(running.price)
    expected = {running: f"{price} reserved", done: f"{price} charged", failed: f"{price} refunded"}

    client.force_login(owner)
    for job, line in expected.items():
        assert f"<dt>Cost</dt><dd>{line}" in client.get(job.get_absolute_url()).text

    client.force_login(staff)
    review = client.get(reverse("person_generations", args=[owner.pk])).text
    assert all(f'<td class="num">{line}</td>' in review for line in expected.values())
