"""The model catalogue: what new accounts start with, what staff change in the admin, and what
members can then choose (or are refused) with no code change."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from nanoweb.credits.models import LedgerEntry
from nanoweb.providers.models import CatalogueEntry
from nanoweb.studio.models import Generation
from tests.test_providers import run_to_end


def submit(client, **data):
    return client.post(reverse("generate"), {"prompt": "p", "routing": "auto", **data}, HTTP_HX_REQUEST="true")


def error_of(response, field: str) -> str:
    found = re.search(rf'<ul class="errorlist" id="id_{field}_error"><li>([^<]*)</li>', response.text)
    return found[1] if found else ""


def test_a_new_account_starts_with_its_vendors_models_as_they_are_today(make_account):
    gemini = make_account("gemini")
    rows = {row.model_id: row for row in gemini.catalogue.all()}

    assert rows["gemini-3.1-flash-image"].name == "Nano Banana 2" and rows["gemini-3.1-flash-image"].enabled
    assert rows["gemini-3.1-flash-image"].resolutions == ["512", "1K", "2K", "4K"]
    old = rows["gemini-2.5-flash-image"]
    assert (old.deprecated, old.enabled, old.replacement, old.shutdown_on) == (True, True, "Nano Banana 2.1", None)
    preview = rows["gemini-3.1-flash-image-preview"]
    assert (preview.enabled, preview.shutdown_on) == (False, date(2026, 6, 25))
    crun = make_account("crun")
    assert set(crun.catalogue.filter(family="Nano Banana").values_list("max_references", flat=True)) == {3}


def test_a_real_gemini_key_is_called_with_the_current_model_id(owner, make_account, simulator):
    job = run_to_end(
        Generation.objects.create(
            owner=owner,
            prompt="p",
            account=make_account("gemini"),
            model="gemini-3.1-flash-image",
            model_name="Nano Banana 2",
        )  # fmt: skip
    )
    assert job.status == Generation.Status.SUCCEEDED, job.error_detail
    assert simulator.requests[-1].path.endswith("/models/gemini-3.1-flash-image:generateContent")


def test_staff_add_a_model_id_in_the_admin_and_members_use_it_at_once(admin_client, owner, crun_account):
    response = admin_client.post(
        reverse("admin:providers_catalogueentry_add"),
        {
            "account": crun_account.pk, "model_id": "google/nano-banana-3", "name": "Nano Banana 3",
            "family": "Nano Banana 3", "enabled": "on", "aspect_ratios": "1:1, 16:9", "resolutions": "1K, 4K",
            "output_formats": "png", "max_references": "14", "prices": "1K=0.09, 4K=0.2",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.text
    row = CatalogueEntry.objects.get(model_id="google/nano-banana-3")
    assert (row.aspect_ratios, row.prices) == (["1:1", "16:9"], {"1K": "0.09", "4K": "0.2"})

    member = admin_client
    member.force_login(owner)
    assert '<option value="Nano Banana 3">' in member.get(reverse("studio")).text
    submit(member, model="Nano Banana 3", aspect_ratio="16:9", resolution="4K")
    job = Generation.objects.get()
    assert (job.model, job.model_name, job.price) == ("google/nano-banana-3", "Nano Banana 3", row.price("4K"))


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"prices": "1K=0.09"}, "prices", "A price is missing for: 4K"),
        ({"prices": "1K=0.09, 4K=500"}, "prices", "not a plausible price"),
        ({"prices": "1K=cheap, 4K=1"}, "prices", "write resolution=amount"),
        ({"deprecated": "on"}, "deprecation_note", "Say why it is deprecated"),
        ({"model_id": "google/nano-banana-2"}, None, "already exists"),
    ],
)
def test_the_catalogue_admin_refuses_incomplete_rows(admin_client, crun_account, change, field, message):
    data = {"account": crun_account.pk, "model_id": "x/new", "name": "New", "family": "New", "enabled": "on",
            "resolutions": "1K, 4K", "max_references": "0", "prices": "1K=0.1, 4K=0.2", **change}  # fmt: skip
    response = admin_client.post(reverse("admin:providers_catalogueentry_add"), data)
    assert response.status_code == 200 and message in response.text
    assert not CatalogueEntry.objects.filter(model_id=data["model_id"], name="New").exists()


def test_refreshing_from_the_defaults_restores_capabilities_but_keeps_the_teams_choices(admin_client, crun_account):
    row = crun_account.catalogue.get(model_id="google/nano-banana-2")
    row.max_references, row.enabled, row.prices = 1, False, {"1K": "0.01", "2K": "0.02", "4K": "0.03"}
    row.save()
    crun_account.catalogue.filter(model_id="google/nano-banana").delete()

    admin_client.post(
        reverse("admin:providers_provideraccount_changelist"),
        {"action": "refresh_catalogue", "_selected_action": [crun_account.pk]},
    )

    row.refresh_from_db()
    assert (row.max_references, row.enabled, row.prices["1K"]) == (14, False, "0.01")
    assert crun_account.catalogue.filter(model_id="google/nano-banana").exists(), "a missing default comes back"


def test_a_disabled_model_is_neither_offered_nor_accepted(owner_client, crun_account):
    crun_account.catalogue.filter(name="Nano Banana 2").update(enabled=False)
    assert '<option value="Nano Banana 2"' not in owner_client.get(reverse("studio")).text
    response = submit(owner_client, model="Nano Banana 2", resolution="1K")
    assert error_of(response, "model") == "Nano Banana 2 is not available: choose another model."
    assert not Generation.objects.exists() and not LedgerEntry.objects.exists()


def test_a_model_only_a_disabled_account_serves_is_refused(owner_client, crun_account):
    crun_account.enabled = False
    crun_account.save()
    response = submit(owner_client, model="Nano Banana 2", resolution="1K")
    assert error_of(response, "model") == "Nano Banana 2 is not available: choose another model."
    assert not Generation.objects.exists()


def test_a_deprecated_model_warns_before_its_shutdown_and_is_refused_after(owner_client, make_account):
    gemini = make_account("gemini")
    options = owner_client.get(reverse("form_options"), {"model": "Nano Banana"}).text
    assert "Nano Banana is deprecated: Since 2026-09-18 Google serves it only to projects that used it" in options
    assert "Use Nano Banana 2.1 instead." in options
    assert submit(owner_client, model="Nano Banana", aspect_ratio="1:1").status_code == 201

    gemini.catalogue.filter(name="Nano Banana").update(shutdown_on=timezone.localdate() - timedelta(days=1))
    response = submit(owner_client, model="Nano Banana", aspect_ratio="1:1")
    assert error_of(response, "model").startswith("Nano Banana was shut down on ")
    assert error_of(response, "model").endswith("Use Nano Banana 2.1.")
    assert Generation.objects.count() == 1


def test_options_no_single_account_offers_together_are_refused(owner_client, make_account):
    make_account("crun"), make_account("gemini")  # 512 is Gemini's only; JPG is crun's only
    response = submit(owner_client, model="Nano Banana 2", resolution="512", output_format="jpg")
    assert "No account serves Nano Banana 2 with these options together: change one." in response.text
    assert submit(owner_client, model="Nano Banana 2", resolution="512", output_format="png").status_code == 201
    assert Generation.objects.get().account.kind == "gemini"


def test_the_gallery_filters_by_catalogue_model(owner_client, owner, make_account):
    crun, gemini = make_account("crun"), make_account("gemini")
    Generation.objects.create(owner=owner, prompt="one", account=crun, model="google/nano-banana-2",
                              model_name="Nano Banana 2", status="succeeded")  # fmt: skip
    Generation.objects.create(owner=owner, prompt="two", account=gemini, model="gemini-2.5-flash-image",
                              model_name="Nano Banana", status="succeeded")  # fmt: skip
    page = owner_client.get(reverse("gallery"), {"model": "Nano Banana"}).text
    assert "two" in page and ">one<" not in page
    assert '<option value="Nano Banana 2">' in page
