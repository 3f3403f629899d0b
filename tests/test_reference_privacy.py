"""An earlier result used as a reference keeps its own privacy: the reference view, the lineage
("Made from" / "Made into") and the ZIP show it only to those who may see the result itself."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from nanoweb.studio.models import Generation
from tests.conftest import start_job, store_result
from tests.test_references import png

ROLES = ["owner", "teammate", "outsider", "staff"]


def finished(owner, account, prompt: str, color: str, **options) -> Generation:
    """A finished job of `owner` with one real image."""
    [job] = start_job(owner, account, "gemini-2.5-flash-image", prompt, **options)
    store_result(job, png(color=color))
    Generation.objects.filter(pk=job.pk).update(status=Generation.Status.SUCCEEDED)
    return job


@pytest.fixture
def clients(request, owner, teammate, outsider, staff) -> dict[str, Client]:
    logged_in = {}
    for role in ROLES:
        logged_in[role] = Client()
        logged_in[role].force_login(request.getfixturevalue(role))
    logged_in["anonymous"] = Client()
    return logged_in


@pytest.fixture
def lineage(owner, teammate, make_account):
    """(a) The owner makes A; the teammate edits A's image into B; then the owner makes A private."""
    gemini = make_account("gemini")
    earlier = finished(owner, gemini, "the owner's harbour", "red")
    later = finished(teammate, gemini, "the harbour at night", "navy", reference_results=[earlier.images.get()])
    owner_client = Client()
    owner_client.force_login(owner)
    assert owner_client.post(reverse("toggle_private", args=[earlier.pk])).status_code == 302
    earlier.refresh_from_db()
    assert earlier.private
    return earlier, later


def served(client: Client, url: str) -> bytes | int:
    response = client.get(url)
    return b"".join(response.streaming_content) if response.status_code == 200 else response.status_code


@pytest.mark.parametrize(
    "role, sees_source",
    [("owner", True), ("staff", True), ("teammate", False), ("outsider", False), ("anonymous", None)],
)
def test_a_result_made_private_is_not_served_as_the_reference_of_a_job_made_from_it(
    clients, lineage, role, sees_source
):
    earlier, later = lineage
    client = clients[role]
    reference = served(client, reverse("generation_reference", args=[later.pk, 0]))
    source = served(client, reverse("image_original", args=[earlier.images.get().pk]))
    if sees_source is None:  # anonymous: sent to sign in, like everywhere else
        assert reference == source == 302
        return
    if sees_source:
        assert reference == source == png(color="red")
    else:
        assert reference == source == 404, "the private source must not leak through the later job"


@pytest.mark.parametrize(
    "role, sees_source", [("owner", True), ("staff", True), ("teammate", False), ("outsider", False)]
)
def test_made_from_shows_a_private_source_only_to_those_who_may_see_it(clients, lineage, role, sees_source):
    earlier, later = lineage
    page = clients[role].get(later.get_absolute_url())
    assert page.status_code == 200, "the later job itself stays shared with the team"
    reference_url = reverse("generation_reference", args=[later.pk, 0])
    assert (earlier.get_absolute_url() in page.text) == sees_source
    assert (reference_url in page.text) == sees_source
    assert ("Made from" in page.text) == sees_source


def test_made_into_lists_only_the_later_jobs_the_viewer_may_see(clients, owner, teammate, make_account):
    gemini = make_account("gemini")
    earlier = finished(owner, gemini, "a shared lighthouse", "teal")
    later = finished(teammate, gemini, "the lighthouse, privately", "gold",
                     reference_results=[earlier.images.get()], private=True)  # fmt: skip
    for role, sees in [("owner", False), ("outsider", False), ("teammate", True), ("staff", True)]:
        page = clients[role].get(earlier.get_absolute_url())
        assert (later.get_absolute_url() in page.text) == sees, role
        assert ("Made into" in page.text) == sees, role


@pytest.mark.parametrize(
    "role, sees_source",
    [("owner", True), ("staff", True), ("teammate", False), ("outsider", False), ("anonymous", None)],
)
def test_a_private_image_staff_picked_as_a_reference_stays_private(
    clients, owner, staff, make_account, role, sees_source
):
    """(b) Staff may pick a member's private image; the staff job's viewers do not get it."""
    gemini = make_account("gemini")
    private = finished(owner, gemini, "the owner's private sketch", "red", private=True)
    staff_job = finished(staff, gemini, "the sketch, cleaned up", "green", reference_results=[private.images.get()])
    reference = served(clients[role], reverse("generation_reference", args=[staff_job.pk, 0]))
    if sees_source is None:
        assert reference == 302
    elif sees_source:
        assert reference == png(color="red")
    else:
        assert reference == 404
        page = clients[role].get(staff_job.get_absolute_url())
        assert page.status_code == 200 and private.get_absolute_url() not in page.text


def test_uploaded_references_follow_the_job_they_belong_to(clients, teammate, make_account):
    from nanoweb.lib import images

    [job] = start_job(teammate, make_account("gemini"), "gemini-2.5-flash-image", "with an upload",
                      reference_files=[images.check(png(color="olive"))])  # fmt: skip
    url = reverse("generation_reference", args=[job.pk, 0])
    assert all(served(clients[role], url) == png(color="olive") for role in ROLES)
    Generation.objects.filter(pk=job.pk).update(private=True)
    assert {role: served(clients[role], url) == png(color="olive") for role in ROLES} == {
        "owner": False, "teammate": True, "outsider": False, "staff": True,
    }  # fmt: skip


def test_the_zip_holds_only_what_the_viewer_may_see(clients, lineage):
    earlier, later = lineage
    for role, expected in [
        ("outsider", [later.pk]),
        ("owner", [earlier.pk, later.pk]),
        ("staff", [earlier.pk, later.pk]),
    ]:
        response = clients[role].get(reverse("download_zip"), {"pick": [earlier.pk, later.pk]})
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        assert [entry["id"] for entry in json.loads(archive.read("metadata.json"))] == expected, role
        contents = [archive.read(name) for name in archive.namelist() if name != "metadata.json"]
        assert (png(color="red") in contents) == (earlier.pk in expected), role
