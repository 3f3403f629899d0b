"""Boards: who may see and change them, private items inside shared boards, adding from every
place a result is shown, the board page (the gallery's filters), the ZIP, and the studio."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from nanoweb.boards.models import Board, BoardItem
from nanoweb.studio import feed
from nanoweb.studio.models import Generation
from tests.conftest import make_user, start_job, store_result, succeed
from tests.test_references import png


@pytest.fixture
def outsider(db, django_user_model):
    """A member for whom the boards of others are private."""
    return make_user(django_user_model, "uma")


@pytest.fixture
def gemini(make_account):
    return make_account("gemini")


@pytest.fixture
def finish(gemini):
    def finish(owner, prompt, color="red", **fields) -> Generation:
        [job] = start_job(owner, gemini, "gemini-2.5-flash-image", prompt, **fields)
        store_result(job, png(color=color))
        succeed(job)
        return job

    return finish


@pytest.fixture
def spring(owner):
    return Board.objects.create(name="Spring campaign", owner=owner)


def put(board, *jobs):
    for job in jobs:
        BoardItem.objects.create(board=board, generation=job, added_by=job.owner)


def add(client, board, *jobs, htmx=True):
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(reverse("board_add"), {"board": board.pk, "pick": [job.pk for job in jobs]}, **extra)


def shown(client, board, **query) -> list[str]:
    response = client.get(reverse("board", args=[board.pk]), query)
    assert response.status_code == 200
    return [job.prompt for job in response.context["jobs"]]


def test_a_member_makes_a_board_and_a_name_is_required(client, owner):
    client.force_login(owner)
    assert "Give the board a name." in client.post(reverse("board_list"), {"name": ""}).text
    response = client.post(reverse("board_list"), {"name": "Spring campaign"})
    board = Board.objects.get()
    assert response["Location"] == board.get_absolute_url() and (board.owner, board.private) == (owner, False)


def test_teammates_add_their_own_results_to_a_shared_board_but_not_other_peoples(
    client, owner, teammate, spring, finish
):
    mine, olivias = finish(teammate, "tom's kite"), finish(owner, "olivia's kite")
    client.force_login(teammate)

    response = add(client, spring, mine, olivias)

    assert "Added 1 to" in response.text and "1 not added" in response.text
    assert list(spring.items.all()) == [mine]
    client.force_login(owner)  # the owner curates: anyone's result she may see
    assert "Added 1 to" in add(client, spring, olivias).text
    assert set(spring.items.all()) == {mine, olivias}


def test_only_the_owner_and_staff_rename_share_cover_or_delete_a_board(client, owner, teammate, staff, spring, finish):
    kite = finish(owner, "a kite")
    put(spring, kite)
    client.force_login(teammate)
    for name, data in [
        ("board_edit", {"name": "Mine now"}),
        ("board_cover", {"pick": kite.pk}),
        ("board_delete", {}),
    ]:
        assert client.post(reverse(name, args=[spring.pk]), data).status_code == 404, name
    assert "Board settings" not in client.get(spring.get_absolute_url()).text

    client.force_login(staff)
    assert client.post(reverse("board_edit", args=[spring.pk]), {"name": "Spring (archived)"}).status_code == 302
    client.force_login(owner)
    assert client.post(reverse("board_cover", args=[spring.pk]), {"pick": kite.pk}).status_code == 302
    bad = client.post(reverse("board_edit", args=[spring.pk]), {"name": ""})
    assert bad.status_code == 400 and "Give the board a name." in bad.text
    spring.refresh_from_db()
    assert (spring.name, spring.cover) == ("Spring (archived)", kite)
    assert client.post(reverse("board_delete", args=[spring.pk])).status_code == 302
    assert not Board.objects.exists() and Generation.objects.filter(pk=kite.pk).exists(), "the images stay"


def test_teammates_take_off_what_they_added_and_the_owner_takes_off_anything(client, owner, teammate, spring, finish):
    toms, olivias = finish(teammate, "tom's"), finish(owner, "olivia's")
    put(spring, toms, olivias)
    client.force_login(teammate)
    response = client.post(
        reverse("board_remove", args=[spring.pk]), {"pick": [toms.pk, olivias.pk]}, HTTP_HX_REQUEST="true"
    )
    assert "Took 1 off" in response.text and "1 not taken off" in response.text
    assert f'id="job-{toms.pk}" hx-swap-oob="delete"' in response.text, "its card leaves the page"
    assert list(spring.items.all()) == [olivias]
    client.force_login(owner)
    assert client.post(reverse("board_remove", args=[spring.pk]), {"pick": olivias.pk}).status_code == 302
    assert not spring.items.exists()


def test_a_private_board_is_its_owners_and_staffs_only(client, owner, outsider, staff, spring, finish):
    Board.objects.filter(pk=spring.pk).update(private=True)
    mine = finish(outsider, "uma's kite")
    client.force_login(outsider)
    assert client.get(spring.get_absolute_url()).status_code == 404
    assert client.get(reverse("board_download", args=[spring.pk])).status_code == 404
    assert add(client, spring, mine).status_code == 404 and not spring.items.exists()
    assert "Spring campaign" not in client.get(reverse("board_list")).text
    assert "Spring campaign" not in client.get(reverse("studio")).text, "not offered in the studio form either"
    client.force_login(staff)
    assert client.get(spring.get_absolute_url()).status_code == 200


def test_private_items_stay_private_inside_a_shared_board(client, owner, teammate, staff, spring, finish):
    shared = finish(owner, "shared kite", "red")
    secret = finish(teammate, "tom's secret kite", "blue", private=True)  # newest, so the default cover
    put(spring, shared, secret)
    Board.objects.filter(pk=spring.pk).update(cover=secret)  # even as the chosen cover

    client.force_login(owner)
    page = client.get(spring.get_absolute_url())
    assert [job.prompt for job in page.context["jobs"]] == ["shared kite"]
    assert page.context["count"] == 1 and "secret" not in page.text
    assert shown(client, spring, q="secret") == []
    [listed] = client.get(reverse("board_list")).context["boards"]
    assert (listed.count, listed.cover_image) == (1, shared.image), "count and cover leave it out"
    archive = zipfile.ZipFile(
        io.BytesIO(b"".join(client.get(reverse("board_download", args=[spring.pk])).streaming_content))
    )
    assert [entry["prompt"] for entry in json.loads(archive.read("metadata.json"))] == ["shared kite"]
    assert len(archive.namelist()) == 2

    for who in (teammate, staff):
        client.force_login(who)
        assert shown(client, spring) == ["tom's secret kite", "shared kite"], who
        [listed] = client.get(reverse("board_list")).context["boards"]
        assert (listed.count, listed.cover_image) == (2, secret.image), who


def test_a_board_downloads_as_a_zip_of_its_originals_and_metadata_as_filtered(client, owner, spring, finish):
    red, blue = finish(owner, "red kite", "red"), finish(owner, "blue kite", "blue")
    finish(owner, "not on the board", "green")
    put(spring, red, blue)
    client.force_login(owner)

    response = client.get(reverse("board_download", args=[spring.pk]))

    assert response["Content-Type"] == "application/zip" and "spring-campaign" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == sorted(["metadata.json", red.image.download_name, blue.image.download_name])
    assert archive.read(red.image.download_name) == png(color="red")
    assert [entry["prompt"] for entry in json.loads(archive.read("metadata.json"))] == ["blue kite", "red kite"]
    filtered = client.get(reverse("board_download", args=[spring.pk]), {"q": "red"})
    assert zipfile.ZipFile(io.BytesIO(b"".join(filtered.streaming_content))).namelist() == [
        red.image.download_name, "metadata.json",
    ]  # fmt: skip


def test_the_board_page_has_the_gallerys_search_filters_and_pages(client, owner, teammate, spring, gemini, finish):
    finish(owner, "not on the board")
    for n in range(feed.PAGE_SIZE + 3):
        put(spring, Generation.objects.create(owner=owner, prompt=f"kite {n}", account=gemini,
                                              model="gemini-2.5-flash-image", status="succeeded"))  # fmt: skip
    put(spring, finish(teammate, "tom's lighthouse"))
    client.force_login(owner)
    assert shown(client, spring, q="lighthouse") == ["tom's lighthouse"]
    assert shown(client, spring, person="tom") == ["tom's lighthouse"]
    with CaptureQueriesContext(connection) as first_queries:
        first = client.get(spring.get_absolute_url())
    second = client.get(spring.get_absolute_url(), {"before": first.context["next_cursor"]})
    seen = [job.prompt for job in first.context["jobs"] + second.context["jobs"]]
    assert len(seen) == len(set(seen)) == feed.PAGE_SIZE + 4 and "not on the board" not in seen
    assert second.context["next_cursor"] is None
    more = client.get(spring.get_absolute_url(), {"before": first.context["next_cursor"]}, HTTP_HX_REQUEST="true")
    assert "<html" not in more.text and more.text.count("<article") == 4, "load more: the next cards only"
    assert len(first_queries) <= 12


def test_the_studio_sends_new_results_straight_to_a_chosen_board(client, owner, outsider, spring, gemini):
    client.force_login(owner)
    assert f'<option value="{spring.pk}" selected>' in client.get(reverse("studio"), {"board": spring.pk}).text
    model = gemini.catalogue.get(model_id="gemini-2.5-flash-image").name
    data = {"prompt": "three kites", "routing": gemini.pk, "model": model, "count": "3"}
    assert client.post(reverse("generate"), {**data, "board": spring.pk}, HTTP_HX_REQUEST="true").status_code == 201
    assert spring.items.count() == 3 and set(spring.entries.values_list("added_by", flat=True)) == {owner.pk}

    hidden = Board.objects.create(name="Uma's", owner=outsider, private=True)
    refused = client.post(reverse("generate"), {**data, "board": hidden.pk}, HTTP_HX_REQUEST="true")
    assert "That board is not available" in refused.text and Generation.objects.count() == 3, "nothing started"


def test_adding_works_from_a_card_a_detail_page_and_without_javascript(client, owner, spring, finish):
    kite = finish(owner, "a kite")
    client.force_login(owner)
    card_form = client.get(reverse("board_add"), {"pick": kite.pk}, HTTP_HX_REQUEST="true")
    assert "<html" not in card_form.text and f'name="pick" value="{kite.pk}"' in card_form.text
    page = client.get(reverse("board_add"), {"pick": kite.pk, "board": spring.pk})  # the selection, without JS
    assert f'<option value="{spring.pk}" selected>' in page.text and "<html" in page.text
    assert add(client, spring, kite, htmx=False)["Location"] == spring.get_absolute_url()

    detail = client.get(kite.get_absolute_url())
    assert f'<a href="{spring.get_absolute_url()}">{spring.name}</a>' in detail.text
    assert f'aria-label="Take off {spring.name}"' in detail.text, "its owner may take it off"
    assert client.post(reverse("board_add"), {"board": spring.pk}).status_code == 400, "nothing chosen"
    assert client.post(reverse("board_add"), {"board": "x", "pick": kite.pk}).status_code == 404


def test_new_board_from_the_picker_is_made_with_the_image_on_it(client, owner, finish):
    kite = finish(owner, "a kite")
    client.force_login(owner)
    form = client.get(reverse("board_add"), {"pick": kite.pk}, HTTP_HX_REQUEST="true")
    assert '<option value="new" selected>New board…</option>' in form.text, "no board yet: the picker offers a new one"

    nameless = client.post(reverse("board_add"), {"pick": kite.pk, "board": "new"}, HTTP_HX_REQUEST="true")
    assert "Name the new board." in nameless.text and not Board.objects.exists()

    added = client.post(
        reverse("board_add"), {"pick": kite.pk, "board": "new", "new_board": "Kites"}, HTTP_HX_REQUEST="true"
    )
    board = Board.objects.get()
    assert board.name == "Kites" and board.owner == owner and not board.private
    assert "Added 1 to" in added.text and list(board.items.all()) == [kite]


def test_an_empty_board_shows_no_filters_and_no_zip(client, owner):
    board = Board.objects.create(name="Empty", owner=owner)
    client.force_login(owner)
    page = client.get(board.get_absolute_url())
    assert "Nothing on this board yet" in page.text
    assert "Download as ZIP" not in page.text and 'role="search"' not in page.text


def test_a_search_from_the_form_keeps_the_boards_it_matches(client, owner):
    board = Board.objects.create(name="Spring campaign", owner=owner)
    client.force_login(owner)
    full = client.get(reverse("gallery"), {"q": "spring"})
    part = client.get(reverse("gallery"), {"q": "spring"}, HTTP_HX_REQUEST="true")  # the filters' own request
    line = f'Boards: <a href="{board.get_absolute_url()}">Spring campaign</a>'
    assert line in full.text and line in part.text
