"""Delete, download a selection, the prompt library, and variations."""

from __future__ import annotations

import io
import json
import os
import zipfile
from decimal import Decimal

from django.urls import reverse

from nanoweb.credits import ledger
from nanoweb.credits.models import LedgerEntry
from nanoweb.lib import images
from nanoweb.studio import audit, history
from nanoweb.studio.models import GeneratedImage, Generation, SavedPrompt
from tests.conftest import start_job, store_result, succeed
from tests.test_references import png


def finished(owner, account, prompt="a kite", color="red", **fields) -> Generation:
    [job] = start_job(owner, account, "gemini-2.5-flash-image", prompt, **fields)
    store_result(job, png(color=color))
    succeed(job)
    return job


def test_deleting_removes_the_files_and_hides_the_job_but_the_ledger_keeps_its_lines(
    client, owner, make_account, django_capture_on_commit_callbacks
):
    gemini = make_account("gemini")
    job = finished(owner, gemini)
    later = finished(owner, gemini, prompt="made from it", reference_results=[job.images.get()])
    image = job.images.get()
    stored = [image.original.path, image.thumbnail.path]
    lines = LedgerEntry.objects.filter(generation=job).count()
    client.force_login(owner)

    with django_capture_on_commit_callbacks(execute=True):  # files go once the deletion is committed
        assert client.post(reverse("delete_generation", args=[job.pk])).status_code == 302

    assert not any(os.path.exists(path) for path in stored), "the files are gone from storage"
    assert not GeneratedImage.objects.filter(pk=image.pk).exists()
    assert client.get(job.get_absolute_url()).status_code == 404
    assert job.prompt not in {j.prompt for j in client.get(reverse("gallery")).context["jobs"]}
    assert LedgerEntry.objects.filter(generation=job).count() == lines and audit.ledger_problems() == []
    lineage = client.get(later.get_absolute_url())
    assert lineage.status_code == 200 and "(deleted)" in lineage.text
    assert client.get(reverse("generation_reference", args=[later.pk, 0])).status_code == 404


def test_deleting_a_running_job_refunds_it_and_only_owner_or_staff_may(client, owner, teammate, staff, make_account):
    [running] = start_job(owner, make_account("crun"), "google/nano-banana", "slow")
    client.force_login(teammate)
    assert client.post(reverse("delete_generation", args=[running.pk])).status_code == 404
    client.force_login(staff)
    assert client.post(reverse("delete_generation", args=[running.pk])).status_code == 302
    running.refresh_from_db()
    assert running.status == "canceled" and running.deleted_at
    assert ledger.standing(owner).spent == 0


def test_a_selection_downloads_as_one_zip_with_the_originals_and_metadata(client, owner, teammate, make_account):
    gemini = make_account("gemini")
    mine, theirs = finished(owner, gemini, "mine", "red"), finished(teammate, gemini, "theirs", "blue")
    hidden = finished(teammate, gemini, "hidden", "green", private=True)
    client.force_login(owner)

    response = client.get(reverse("download_zip"), {"pick": [mine.pk, theirs.pk, hidden.pk, "x"]})

    assert response["Content-Type"] == "application/zip" and "attachment" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = sorted(archive.namelist())
    assert names == sorted(["metadata.json", mine.images.get().download_name, theirs.images.get().download_name])
    assert archive.read(mine.images.get().download_name) == png(color="red")
    metadata = json.loads(archive.read("metadata.json"))
    assert [(m["prompt"], m["person"], m["cost"]) for m in metadata] == [
        ("mine", "olivia", "0.039"),
        ("theirs", "tom", "0.039"),
    ]
    assert client.get(reverse("download_zip"), {"pick": [hidden.pk]}).status_code == 400, (
        "a private item of someone else"
    )


def test_the_prompt_library_saves_searches_and_loads_into_the_studio(client, owner, make_account):
    client.force_login(owner)
    assert "Give the preset a title." in client.post(reverse("prompt_library"), {"prompt": "x"}).text
    client.post(
        reverse("prompt_library"),
        {"title": "Product shot", "prompt": "a bottle on white marble", "tags": "product, studio"},
    )
    client.post(
        reverse("prompt_library"), {"title": "Moody", "prompt": "a street at night in the rain", "tags": "noir"}
    )

    found = client.get(reverse("prompt_library"), {"q": "marble"})
    assert "Product shot" in found.text and "Moody" not in found.text
    assert "Moody" in client.get(reverse("prompt_library"), {"q": "noir"}).text
    saved = SavedPrompt.objects.get(title="Product shot")
    form = client.get(reverse("studio"), {"prompt": saved.pk}).context["form"]
    assert form.initial["prompt"] == "a bottle on white marble"


def test_variations_make_several_jobs_as_one_group_paid_together(owner_client, owner, crun_account):
    from nanoweb.credits.models import Budget

    Budget.objects.create(user=owner, amount=Decimal("0.25"), period="month")
    data = {"prompt": "four kites", "routing": crun_account.pk, "model": "Nano Banana 2", "count": "4"}
    refused = owner_client.post(reverse("generate"), data, HTTP_HX_REQUEST="true")
    assert "left this month" in refused.text and not Generation.objects.exists(), "4 × 0.067 is over 0.25: none start"

    created = owner_client.post(reverse("generate"), {**data, "count": "3"}, HTTP_HX_REQUEST="true")
    assert created.status_code == 201 and created.text.count("<article") == 1, "one card for the set"
    assert created.text.count('class="variation ') == 3
    jobs = Generation.objects.all()
    assert len({job.group for job in jobs}) == 1 and jobs[0].group is not None
    assert ledger.standing(owner).spent == Decimal("0.201")


def test_variations_store_an_uploaded_reference_once(owner, make_account):
    jobs = start_job(owner, make_account("gemini"), "gemini-2.5-flash-image", count=2,
                     reference_files=[images.check(png())])  # fmt: skip
    assert {job.reference_links.get().reference_id for job in jobs} == {jobs[0].reference_links.get().reference_id}
    history.delete(jobs[0])
    assert jobs[1].reference_links.get().reference.file, "the variation still using the upload keeps it"
