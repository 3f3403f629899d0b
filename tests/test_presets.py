"""The prompt library keeps presets: a prompt with its model and options, shared or private."""

from __future__ import annotations

from django.urls import reverse

from nanoweb.studio.models import SavedPrompt
from tests.conftest import start_job

PRESET = {
    "title": "Product shot",
    "prompt": "a bottle on white marble",
    "tags": "product",
    "model": "Nano Banana 2",
    "aspect_ratio": "16:9",
    "resolution": "2K",
    "output_format": "png",
}


def save(client, **changes) -> SavedPrompt:
    response = client.post(reverse("prompt_library"), {**PRESET, **changes})
    assert response.status_code == 302, response.text
    return SavedPrompt.objects.latest("pk")


def test_a_preset_keeps_the_model_and_options_and_the_studio_starts_with_them(client, owner, crun_account):
    client.force_login(owner)
    preset = save(client)
    assert preset.choices == {
        "model": "Nano Banana 2",
        "aspect_ratio": "16:9",
        "resolution": "2K",
        "output_format": "png",
    }
    assert "Nano Banana 2 · 16:9 · 2K · PNG" in client.get(reverse("prompt_library")).text

    form = client.get(reverse("studio"), {"prompt": preset.pk}).context["form"]
    assert form.initial["prompt"] == "a bottle on white marble"
    assert (form.initial["model"], form.initial["aspect_ratio"], form.initial["resolution"]) == (
        "Nano Banana 2",
        "16:9",
        "2K",
    )


def test_an_option_no_model_offers_is_refused_next_to_its_field(client, owner, crun_account):
    client.force_login(owner)
    response = client.post(reverse("prompt_library"), {**PRESET, "resolution": "16K", "model": "Nano Banana 7"})
    assert response.status_code == 200 and not SavedPrompt.objects.exists()
    errors = response.context["form"].errors
    assert "Not offered by any model today" in errors["resolution"][0] and "model" in errors


def test_a_result_saved_as_a_preset_brings_its_options(client, owner, crun_account):
    [job] = start_job(owner, crun_account, "google/nano-banana-2", "a kite at dawn", aspect_ratio="3:2")
    client.force_login(owner)
    form = client.get(reverse("prompt_library"), {"from": job.pk}).context["form"]
    assert (form.initial["prompt"], form.initial["aspect_ratio"], form.initial["model"]) == (
        "a kite at dawn",
        "3:2",
        "Nano Banana 2",
    )


def test_private_presets_are_their_owners_and_staffs_and_only_they_change_them(
    client, owner, teammate, staff, crun_account
):
    client.force_login(owner)
    shared, private = save(client, title="Shared one"), save(client, title="Mine only", private="on")

    client.force_login(teammate)
    listing = client.get(reverse("prompt_library")).text
    assert "Shared one" in listing and "Mine only" not in listing
    assert client.get(reverse("studio"), {"prompt": private.pk}).status_code == 404
    assert client.get(reverse("edit_preset", args=[private.pk])).status_code == 404
    assert client.post(reverse("delete_preset", args=[private.pk])).status_code == 404
    assert client.get(reverse("studio"), {"prompt": shared.pk}).status_code == 200
    assert client.get(reverse("edit_preset", args=[shared.pk])).status_code == 403
    assert client.post(reverse("delete_preset", args=[shared.pk])).status_code == 403
    assert SavedPrompt.objects.count() == 2

    client.force_login(staff)
    assert "Mine only" in client.get(reverse("prompt_library")).text
    assert (
        client.post(reverse("edit_preset", args=[private.pk]), {**PRESET, "title": "Renamed by staff"}).status_code
        == 302
    )
    assert SavedPrompt.objects.get(pk=private.pk).title == "Renamed by staff"


def test_the_owner_edits_and_deletes_with_a_confirmation(client, owner, crun_account):
    client.force_login(owner)
    preset = save(client)
    listing = client.get(reverse("prompt_library")).text
    assert "data-confirm=" in listing and reverse("delete_preset", args=[preset.pk]) in listing

    response = client.post(reverse("edit_preset", args=[preset.pk]), {**PRESET, "title": "", "model": ""})
    assert response.status_code == 200 and "Give the preset a title." in response.text
    client.post(reverse("edit_preset", args=[preset.pk]), {**PRESET, "model": "", "aspect_ratio": "", "private": "on"})
    preset.refresh_from_db()
    assert preset.private and preset.choices == {"resolution": "2K", "output_format": "png"}

    assert client.get(reverse("delete_preset", args=[preset.pk])).status_code == 405
    assert client.post(reverse("delete_preset", args=[preset.pk])).status_code == 302
    assert not SavedPrompt.objects.exists()


def test_anonymous_visitors_cannot_reach_presets(client, owner, crun_account):
    client.force_login(owner)
    preset = save(client)
    client.logout()
    for response in (
        client.get(reverse("edit_preset", args=[preset.pk])),
        client.post(reverse("delete_preset", args=[preset.pk])),
    ):
        assert response.status_code == 302 and "/login" in response["Location"]
    assert SavedPrompt.objects.count() == 1
