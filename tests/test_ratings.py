"""1–5 stars per person: rate, change, clear; sort and filter by them; shown on cards; the
favourites they replaced become five stars."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from nanoweb.studio.models import Generation, Rating


@pytest.fixture
def jobs(owner, crun_account):
    return {
        name: Generation.objects.create(
            owner=owner, prompt=name, account=crun_account, model="google/nano-banana", status="succeeded"
        )  # fmt: skip
        for name in ["oldest kite", "a fox", "a bear", "newest kite"]
    }


def rate(client, job, stars, htmx=True):
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(reverse("rate", args=[job.pk]), {"stars": stars}, **extra)


def order(client, **query) -> list[str]:
    return [job.prompt for job in client.get(reverse("gallery"), query).context["jobs"]]


def test_a_person_rates_changes_and_clears_their_stars(owner_client, owner, jobs):
    kite = jobs["newest kite"]
    response = rate(owner_client, kite, "4")
    assert response.text.count("★") == 4 and 'aria-label="Your rating: 4 of 5 (press to clear)"' in response.text
    rate(owner_client, kite, "2")
    assert Rating.objects.get(user=owner, generation=kite).stars == 2
    assert rate(owner_client, kite, "0").text.count("★") == 0 and not Rating.objects.exists()
    assert rate(owner_client, kite, "5", htmx=False)["Location"] == kite.get_absolute_url()
    for bad in ["6", "-1", "x", ""]:
        assert rate(owner_client, kite, bad).status_code == 400, bad
    assert Rating.objects.get().stars == 5


def test_the_card_shows_my_stars_and_the_teams_average(client, owner, teammate, jobs):
    fox = jobs["a fox"]
    client.force_login(teammate)
    rate(client, fox, "2")
    client.force_login(owner)
    rate(client, fox, "5")
    [card] = [job for job in client.get(reverse("gallery")).context["jobs"] if job == fox]
    assert (card.stars.mine, card.stars.average, card.stars.count) == (5, 3.5, 2)
    page = client.get(reverse("gallery")).text
    assert 'title="Team average of 2 ratings">3.5 · 2</span>' in page
    assert 'title="Team average of 2 ratings">3.5 · 2</span>' in client.get(fox.get_absolute_url()).text


def test_my_best_first_and_my_stars_as_a_filter(client, owner, teammate, jobs):
    client.force_login(teammate)
    rate(client, jobs["a bear"], "5")  # someone else's stars do not order my view
    client.force_login(owner)
    rate(client, jobs["oldest kite"], "5")
    rate(client, jobs["a fox"], "3")
    rate(client, jobs["a bear"], "3")

    assert order(client, order="stars") == ["oldest kite", "a bear", "a fox", "newest kite"], "then newest first"
    assert order(client, stars="3") == ["a bear", "a fox", "oldest kite"]
    assert order(client, stars="5") == ["oldest kite"]
    assert order(client, stars="4", order="stars") == ["oldest kite"]
    assert order(client, q="kite", order="stars") == ["oldest kite", "newest kite"]
    assert "Select a valid choice" in client.get(reverse("gallery"), {"stars": "9"}).text
    client.force_login(teammate)
    assert order(client, stars="1") == ["a bear"]


def test_pages_sorted_by_stars_follow_on_without_repeats(client, owner, crun_account, settings):
    from nanoweb.studio import feed

    made = [
        Generation.objects.create(
            owner=owner, prompt=f"p{n}", account=crun_account, model="google/nano-banana", status="succeeded"
        )
        for n in range(feed.PAGE_SIZE + 10)
    ]
    Rating.objects.bulk_create(Rating(user=owner, generation=job, stars=1 + n % 5) for n, job in enumerate(made[:40]))
    client.force_login(owner)
    seen, cursor = [], None
    while True:
        response = client.get(reverse("gallery"), {"order": "stars", **({"before": cursor} if cursor else {})})
        seen += response.context["jobs"]
        cursor = response.context["next_cursor"]
        if not cursor:
            break
    stars = {rating.generation_id: rating.stars for rating in Rating.objects.all()}
    assert len(seen) == len(set(seen)) == len(made)
    assert [stars.get(job.pk, 0) for job in seen] == sorted((stars.get(job.pk, 0) for job in made), reverse=True)


def test_favourites_become_five_star_ratings(transactional_db, owner, crun_account):
    executor = MigrationExecutor(connection)
    executor.migrate([("studio", "0011_prompt_search")])
    apps = executor.loader.project_state([("studio", "0011_prompt_search")]).apps
    # The models of that time: later migrations add columns the current model has.
    job = apps.get_model("studio", "Generation").objects.create(
        owner_id=owner.pk, prompt="loved", account_id=crun_account.pk, model="google/nano-banana"
    )
    apps.get_model("studio", "Favorite").objects.create(user_id=owner.pk, generation_id=job.pk)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert list(Rating.objects.values_list("user", "generation", "stars")) == [(owner.pk, job.pk, 5)]
