"""The team's shared history: what each person sees, search and filters, favourites, reuse."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from nanoweb.studio import feed
from nanoweb.studio.models import GeneratedImage, Generation


@pytest.fixture
def history(owner, teammate, make_account):
    crun, gemini = make_account("crun"), make_account("gemini")

    def make(owner, prompt, account=crun, model="google/nano-banana-2", days_ago=0, **fields):
        name = account.catalogue.get(model_id=model).name
        job = Generation.objects.create(owner=owner, prompt=prompt, account=account, model=model, model_name=name,
                                        automatic=False, **fields)  # fmt: skip
        Generation.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
        return job

    return {
        "fox": make(owner, "a red fox in the snow", status="succeeded", days_ago=8),
        "secret": make(owner, "a secret red door", private=True, status="succeeded"),
        "bear": make(
            teammate, "a brown bear fishing", account=gemini, model="gemini-2.5-flash-image", status="succeeded"
        ),
        "failed": make(teammate, "a red balloon", status="failed", days_ago=2),
        "hidden": make(teammate, "teammate's private red sketch", private=True, status="succeeded"),
    }


def prompts(response) -> set[str]:
    return {job.prompt for job in response.context["jobs"]}


def test_the_team_feed_shows_shared_work_and_my_private_work_only(client, owner, teammate, staff, history):
    client.force_login(owner)
    seen = prompts(client.get(reverse("gallery")))
    assert "a secret red door" in seen and "a brown bear fishing" in seen
    assert "teammate's private red sketch" not in seen
    client.force_login(staff)
    assert "teammate's private red sketch" in prompts(client.get(reverse("gallery")))


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"q": "red"}, {"a red fox in the snow", "a secret red door"}),
        ({"q": "RED snow", "order": "newest"}, {"a red fox in the snow"}),
        ({"q": "bear", "person": "tom"}, {"a brown bear fishing"}),
        ({"view": "mine"}, {"a red fox in the snow", "a secret red door"}),
        ({"status": "failed"}, set()),  # a teammate's failure is theirs
        ({"model": "Nano Banana"}, {"a brown bear fishing"}),
        ({"q": "red", "since": "{week_ago}"}, {"a secret red door"}),
        ({"until": "{week_ago}"}, {"a red fox in the snow"}),
    ],
)
def test_search_and_filters_combine(client, owner, history, query, expected):
    week_ago = (timezone.localdate() - timedelta(days=7)).isoformat()
    client.force_login(owner)
    response = client.get(reverse("gallery"), {k: v.format(week_ago=week_ago) for k, v in query.items()})
    assert prompts(response) == expected


def test_the_gallery_shows_finished_images_and_failures_only_to_their_owner(client, owner, teammate, history):
    client.force_login(teammate)
    assert "a red balloon" not in prompts(client.get(reverse("gallery")))
    assert prompts(client.get(reverse("gallery"), {"status": "failed"})) == {"a red balloon"}
    assert prompts(client.get(reverse("gallery"), {"status": "running"})) == set()
    page = client.get(reverse("gallery"))
    assert '<option value="" selected>Done</option>' in page.text and "submitting" not in page.text.lower()
    client.force_login(owner)
    Generation.objects.filter(pk=history["bear"].pk).update(status="running")
    assert prompts(client.get(reverse("gallery"), {"status": "running"})) == set(), "a teammate's running job is theirs"


def test_filters_live_in_the_url_and_bad_ones_are_explained(client, owner, history):
    client.force_login(owner)
    page = client.get(reverse("gallery") + "?q=bear&status=canceled")
    assert 'value="bear"' in page.text and '<option value="canceled" selected>' in page.text
    bad = client.get(reverse("gallery"), {"since": "2026-05-10", "until": "2026-05-01"})
    assert "The end must not be before the start." in bad.text and bad.context["jobs"] == []
    assert "Select a valid choice" in client.get(reverse("gallery"), {"person": "nobody"}).text


def test_edits_only_shows_jobs_made_from_references(client, owner, history):
    from nanoweb.lib import images
    from nanoweb.studio import references
    from tests.test_references import png

    edit = Generation.objects.create(
        owner=owner,
        prompt="the fox, edited",
        account=history["fox"].account,
        model="google/nano-banana-2",
        status="succeeded",
    )
    references.link(edit, references.store(owner, uploads=[images.check(png())], results=[], written=[]))
    client.force_login(owner)
    assert prompts(client.get(reverse("gallery"), {"edits": "on"})) == {"the fox, edited"}


def test_pages_follow_a_cursor_with_a_constant_number_of_queries(client, owner, crun_account):
    for n in range(feed.PAGE_SIZE * 2 + 5):
        job = Generation.objects.create(
            owner=owner, prompt=f"image {n}", account=crun_account, model="google/nano-banana-2", status="succeeded"
        )
        GeneratedImage.objects.create(generation=job, width=1, height=1, bytes=1, sha256="0" * 64, mime_type="image/png",
                                      original="o.png", thumbnail="t.webp")  # fmt: skip
    client.force_login(owner)
    client.get(reverse("gallery"))  # warm the session and user queries
    with CaptureQueriesContext(connection) as first_page:
        first = client.get(reverse("gallery"))
    assert len(first.context["jobs"]) == feed.PAGE_SIZE and first.context["next_cursor"]
    with CaptureQueriesContext(connection) as second_page:
        second = client.get(reverse("gallery"), {"before": first.context["next_cursor"]})
    third = client.get(reverse("gallery"), {"before": second.context["next_cursor"]})
    seen = [job.pk for page in (first, second, third) for job in page.context["jobs"]]
    assert len(seen) == len(set(seen)) == feed.PAGE_SIZE * 2 + 5
    assert third.context["next_cursor"] is None
    assert len(first_page.captured_queries) == len(second_page.captured_queries) <= 8

    more = client.get(reverse("gallery"), {"before": first.context["next_cursor"]}, HTTP_HX_REQUEST="true")
    assert "<html" not in more.text and more.text.count("<article") == feed.PAGE_SIZE
    assert f"before={second.context['next_cursor']}" in more.text, "the next 'load more' follows on"


def test_no_one_can_rate_or_unhide_what_they_may_not_see(client, owner, teammate, history):
    client.force_login(owner)
    assert client.post(reverse("rate", args=[history["hidden"].pk]), {"stars": "5"}).status_code == 404
    assert client.post(reverse("toggle_private", args=[history["hidden"].pk])).status_code == 404
    assert client.post(reverse("toggle_private", args=[history["bear"].pk])).status_code == 404, "not the owner"
    assert Generation.objects.get(pk=history["bear"].pk).private is False


def test_the_owner_makes_a_generation_private_and_the_team_loses_sight_of_it(client, owner, teammate, history):
    client.force_login(owner)
    client.post(reverse("toggle_private", args=[history["fox"].pk]))
    client.force_login(teammate)
    assert client.get(history["fox"].get_absolute_url()).status_code == 404
    assert "a red fox in the snow" not in prompts(client.get(reverse("gallery")))


def test_use_this_prompt_fills_the_studio_form_with_every_parameter(client, teammate, history):
    bear = history["bear"]
    Generation.objects.filter(pk=bear.pk).update(aspect_ratio="21:9", google_search=False)
    client.force_login(teammate)
    form = client.get(reverse("studio"), {"from": bear.pk}).context["form"]
    assert form.initial["prompt"] == "a brown bear fishing"
    assert (form.initial["routing"], form.initial["model"], form.initial["aspect_ratio"]) == (
        str(bear.account_id), "Nano Banana", "21:9",
    )  # fmt: skip
    assert client.get(reverse("studio"), {"from": history["hidden"].pk + 999}).status_code == 404
