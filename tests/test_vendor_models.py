"""Today's Gemini catalogue, the store setting, and learning from the vendor's own model list."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.apps import apps as global_apps
from django.urls import reverse

from nanoweb.providers import vendor_models
from nanoweb.providers.models import CatalogueEntry, ProviderAccount
from nanoweb.providers.simulator.protocols import gemini as sim_gemini
from nanoweb.studio.models import Generation
from tests.conftest import start_job
from tests.test_providers import run_to_end

TODAY = {
    "gemini-nano-banana-2.1": ("Nano Banana 2.1", {"1K": "0.067", "2K": "0.101", "4K": "0.151"}, False, False),
    "gemini-3.1-flash-image": (
        "Nano Banana 2",
        {"512": "0.045", "1K": "0.067", "2K": "0.101", "4K": "0.151"},
        True,
        True,
    ),
    "gemini-3-pro-image": ("Nano Banana Pro", {"1K": "0.134", "2K": "0.134", "4K": "0.24"}, False, True),
    "gemini-3.1-flash-lite-image": ("Nano Banana 2 Lite", {"1K": "0.034"}, False, True),
    "gemini-2.5-flash-image": ("Nano Banana", {"": "0.039"}, True, True),
}  # model id: name, prices, deprecated, price confirmed


def test_a_new_gemini_account_offers_todays_nano_banana_family_at_googles_prices(make_account):
    rows = {row.model_id: row for row in make_account("gemini").catalogue.all()}
    for model_id, (name, prices, deprecated, confirmed) in TODAY.items():
        row = rows[model_id]
        assert (row.name, row.prices, row.deprecated, row.price_confirmed, row.enabled) == (
            name, prices, deprecated, confirmed, True
        ), model_id  # fmt: skip
    assert rows["gemini-nano-banana-2.1"].aspect_ratios[:3] == ["1:1", "1:4", "1:8"]
    assert len(rows["gemini-nano-banana-2.1"].aspect_ratios) == 14
    assert rows["gemini-3.1-flash-image"].replacement == "Nano Banana 2.1"
    assert not rows["gemini-3.1-flash-image-preview"].enabled


def test_staff_see_that_nano_banana_2_1s_price_is_unconfirmed(admin_client, make_account):
    make_account("gemini")
    page = admin_client.get(reverse("admin:providers_catalogueentry_changelist")).text
    assert '<span class="nowrap">4K 0.151</span><br>(price unconfirmed)' in page


def test_the_migration_adds_todays_rows_to_an_existing_account_without_repricing(make_account):
    gemini = make_account("gemini")
    gemini.catalogue.exclude(model_id="gemini-3.1-flash-image").delete()
    gemini.catalogue.update(prices={"512": "0.04", "1K": "0.06", "2K": "0.1", "4K": "0.15"}, deprecated=False)
    migration = importlib.import_module("nanoweb.providers.migrations.0011_today_catalogue")
    migration.add_todays_models(global_apps, None)
    rows = {row.model_id: row for row in gemini.catalogue.all()}
    assert set(TODAY) <= set(rows)
    kept = rows["gemini-3.1-flash-image"]
    assert kept.prices["1K"] == "0.06" and kept.deprecated and kept.replacement == "Nano Banana 2.1"
    assert rows["gemini-3-pro-image"].price("4K") == Decimal("0.24")


@pytest.mark.parametrize("keep, sent", [(False, False), (True, None)])
def test_gemini_requests_say_store_false_unless_the_account_lets_google_keep_them(
    owner, make_account, simulator, keep, sent
):
    gemini = make_account("gemini")
    ProviderAccount.objects.filter(pk=gemini.pk).update(store_requests=keep)
    gemini.refresh_from_db()
    [job] = start_job(owner, gemini, "gemini-nano-banana-2.1", f"a quiet harbour {keep}", resolution="2K")
    job = run_to_end(job)
    assert job.status == Generation.Status.SUCCEEDED, job.error_detail
    made = next(j for j in simulator.jobs.values() if j.prompt == f"a quiet harbour {keep}")
    assert made.params.get("store") is sent


def test_staff_read_what_the_store_setting_means_on_the_account(admin_client, make_account):
    gemini = make_account("gemini")
    page = admin_client.get(reverse("admin:providers_provideraccount_change", args=[gemini.pk])).text
    assert "let the vendor keep requests" in page.lower() and "up to 55 days" in page


def test_the_vendors_list_shows_staff_a_new_model_and_adds_it_in_one_click(client, staff, make_account, monkeypatch):
    gemini = make_account("gemini")
    monkeypatch.setitem(sim_gemini.MODELS, "gemini-3.5-flash-image", (sim_gemini.RATIOS_31, {"1K"}))
    gemini.catalogue.filter(model_id="gemini-3-pro-image").delete()
    CatalogueEntry.objects.create(account=gemini, model_id="gemini-3-retired-image", name="Retired", prices={"": "1"})
    client.force_login(staff)

    client.post(reverse("check_vendor_models"))
    page = client.get(reverse("vendor_model_lists")).text
    assert "gemini-3.5-flash-image" in page and "gemini-3-pro-image" in page  # new at the vendor
    assert "gemini-3-retired-image" in page  # no longer listed
    assert "gemini-3-flash<" not in page and "embedding" not in page  # text models are not ours

    client.post(reverse("add_vendor_model", args=[gemini.pk]), {"model_id": "gemini-3-pro-image"})
    pro = gemini.catalogue.get(model_id="gemini-3-pro-image")
    assert (pro.name, pro.enabled, pro.prices["4K"]) == ("Nano Banana Pro", True, "0.24")
    client.post(reverse("add_vendor_model", args=[gemini.pk]), {"model_id": "gemini-3.5-flash-image"})
    unknown = gemini.catalogue.get(model_id="gemini-3.5-flash-image")
    assert (unknown.enabled, unknown.price_confirmed) == (False, False)
    page = client.get(reverse("vendor_model_lists")).text
    assert "Nothing new." in page


def test_a_model_the_vendor_does_not_list_cannot_be_added(client, staff, make_account):
    gemini = make_account("gemini")
    vendor_models.check(gemini)
    client.force_login(staff)
    response = client.post(reverse("add_vendor_model", args=[gemini.pk]), {"model_id": "made-up-image"}, follow=True)
    assert "does not list made-up-image" in response.text
    assert not gemini.catalogue.filter(model_id="made-up-image").exists()


def test_members_cannot_see_or_change_the_vendor_lists(owner_client, make_account):
    gemini = make_account("gemini")
    assert owner_client.get(reverse("vendor_model_lists")).status_code == 403
    assert owner_client.post(reverse("add_vendor_model", args=[gemini.pk]), {"model_id": "x"}).status_code == 403


def test_a_model_id_the_vendor_answers_404_for_is_marked_on_its_row_at_once(owner, make_account):
    gemini = make_account("gemini")
    CatalogueEntry.objects.create(
        account=gemini, model_id="gemini-3-pro-image-preview", name="Old Pro", family="Nano Banana Pro",
        resolutions=["1K"], prices={"1K": "0.1"},
    )  # fmt: skip
    [job] = start_job(owner, gemini, "gemini-3-pro-image-preview", "p")
    job = run_to_end(job)
    assert job.status == Generation.Status.FAILED
    row = gemini.catalogue.get(model_id="gemini-3-pro-image-preview")
    assert row.vendor_missing_at is not None
    assert gemini.catalogue.get(model_id="gemini-3-pro-image").vendor_missing_at is None
