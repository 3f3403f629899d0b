"""Full-text search over prompts and board names, on whichever database the suite runs on
(`make test` runs it on SQLite's FTS5 and on PostgreSQL's text search)."""

from __future__ import annotations

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.urls import reverse

from nanoweb.boards.models import Board
from nanoweb.lib import search
from nanoweb.studio.models import Generation


@pytest.fixture
def make(owner, crun_account):
    def make(prompt: str, **fields) -> Generation:
        return Generation.objects.create(
            owner=owner, prompt=prompt, account=crun_account, model="google/nano-banana", status="succeeded", **fields
        )

    return make


def found(client, **query) -> list[str]:
    return [job.prompt for job in client.get(reverse("gallery"), query).context["jobs"]]


def test_the_prompt_with_every_word_ranks_first_then_those_with_some(owner_client, make):
    make("a lighthouse at dawn, oil painting")  # the oldest: relevance comes before recency
    make("a lighthouse at night")
    make("dawn over the harbour")
    make("a red kite")
    make("golden lighthouses under a dawn sky")  # stemming: lighthouses is lighthouse

    ranked = found(owner_client, q="lighthouse dawn")

    assert ranked == [
        "golden lighthouses under a dawn sky",
        "a lighthouse at dawn, oil painting",
        "dawn over the harbour",
        "a lighthouse at night",
    ], "both words first (newest first among them), then one of them; never neither"
    assert found(owner_client, q="lighthouse dawn", order="newest") == ranked[:2], "newest first: every word"


def test_words_match_their_other_forms_and_beginnings_after_whole_words(owner_client, make):
    make("a lighthouse on a cliff")
    make("two foxes running")
    make("a light in the window")
    assert found(owner_client, q="fox run") == ["two foxes running"]
    assert found(owner_client, q="LIGHTHOUSE") == ["a lighthouse on a cliff"]
    assert found(owner_client, q="light") == ["a light in the window", "a lighthouse on a cliff"], "being typed"
    assert found(owner_client, q="light* cliff", order="newest") == ["a lighthouse on a cliff"], "a star, anywhere"
    assert found(owner_client, q="cliff light", order="newest") == ["a lighthouse on a cliff"]


def test_quotes_find_a_phrase(owner_client, make):
    make("a lighthouse at dawn")
    make("dawn at the lighthouse")
    assert found(owner_client, q='"lighthouse at dawn"') == ["a lighthouse at dawn"]
    assert found(owner_client, q='"dawn at the lighthouse') == ["dawn at the lighthouse"], "unclosed: to the end"


@pytest.mark.parametrize(
    "typed",
    [
        '"', '""', "'", 'lighthouse"', "(lighthouse", "lighthouse)", "lighthouse AND", "OR NOT lighthouse",
        "NEAR(lighthouse dawn)", "*", "lighthouse*", "-lighthouse", "lighthouse:*", "prompt:lighthouse",
        "lighthouse & !dawn | (", "<-> lighthouse", "\\", "%", "_", "^lighthouse", "{prompt}: lighthouse",
        "lighthouse 🦊", "l" * 300, "the lighthouse", "a' OR 1=1 --",
    ],
)  # fmt: skip
def test_nothing_a_person_types_breaks_the_query(owner_client, make, typed):
    make("a lighthouse at dawn")
    response = owner_client.get(reverse("gallery"), {"q": typed[:200]})
    assert response.status_code == 200
    if "lighthouse" in typed:
        assert [job.prompt for job in response.context["jobs"]] == ["a lighthouse at dawn"]


def test_the_index_follows_every_write(owner_client, make):
    kite = make("a red kite")
    Generation.objects.filter(pk=kite.pk).update(prompt="a blue balloon")
    assert found(owner_client, q="kite") == []
    assert found(owner_client, q="balloon") == ["a blue balloon"]
    Generation.objects.filter(pk=kite.pk).delete()
    assert found(owner_client, q="balloon") == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's index is a generated column")
def test_triggers_a_table_rebuild_dropped_come_back_after_migrate(owner_client, make):
    make("a lighthouse at dawn")
    with connection.cursor() as cursor:  # what rebuilding the table in a migration does to them
        for suffix in ("insert", "delete", "update"):
            cursor.execute(f"DROP TRIGGER studio_generation_fts_{suffix}")
    make("a stormy harbour")  # written while the triggers were gone

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    assert found(owner_client, q="harbour") == ["a stormy harbour"], "reindexed"
    make("a quiet harbour")
    assert found(owner_client, q="harbour") == ["a quiet harbour", "a stormy harbour"], "and kept in sync again"


def test_board_names_are_searched_too(owner_client, owner, make):
    Board.objects.create(name="Spring campaign", owner=owner)
    harbour = Board.objects.create(name="Harbour studies", owner=owner)
    boards = owner_client.get(reverse("board_list"), {"q": "campaign spri"}).context["boards"]
    assert [board.name for board in boards] == ["Spring campaign"]
    page = owner_client.get(reverse("gallery"), {"q": "harbour"}).text
    named = page.partition('<p class="matching-boards">')[2].partition("</p>")[0]
    assert named == f'Boards: <a href="{harbour.get_absolute_url()}">Harbour studies</a>'


def test_parsing_keeps_words_and_phrases_and_drops_everything_else():
    assert search.parse('red "at dawn" (fox) AND* "') == [
        search.Term(("red",), bare=True),
        search.Term(("at", "dawn")),
        search.Term(("fox",), bare=True),
        search.Term(("and",), prefix=True),
    ]
    assert search.parse("!!! ***") == []
    assert len(search.parse(" ".join(f"w{n}" for n in range(50)))) == search.MAX_TERMS
