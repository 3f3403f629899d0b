"""What staff see about provider accounts in the admin."""

from __future__ import annotations

import re

from django.urls import reverse

from nanoweb.studio.models import Generation


def test_the_account_list_shows_balance_completion_mode_and_recent_failures(
    admin_client, make_account, owner, settings
):
    settings.PUBLIC_BASE_URL = ""
    crun, nanophoto = make_account("crun"), make_account("nanophoto")
    broken = make_account("apiframe", name="apiframe broken")
    broken.api_key = "wrong"
    broken.save()
    failed = Generation.objects.create(owner=owner, prompt="p", account=crun, model="google/nano-banana")
    failed.advance(Generation.Status.QUEUED, Generation.Status.FAILED, error_kind="rate_limited")

    page = admin_client.get(reverse("admin:providers_provideraccount_changelist")).text

    balances = re.findall(r'<td class="field-balance_now">([^<]*)</td>', page)
    assert any(b.isdigit() and int(b) > 0 for b in balances), balances  # crun's live balance
    assert "Could not read it: The provider rejected the account&#x27;s API key: ask an admin to check it." in page
    assert "no balance endpoint" in page
    assert "polling only: set PUBLIC_BASE_URL so the provider can call back" in page
    assert "polling (the provider has no callbacks)" in page
    assert "rate_limited: 1" in page
    assert nanophoto.name in page


def test_with_a_public_base_url_push_providers_use_callbacks(admin_client, make_account, settings):
    settings.PUBLIC_BASE_URL = "https://studio.example"
    account = make_account("defapi")
    page = admin_client.get(reverse("admin:providers_provideraccount_change", args=[account.pk])).text
    assert "callbacks to https://studio.example, polling as a safety net" in page
    assert (
        "synchronous call"
        in admin_client.get(reverse("admin:providers_provideraccount_change", args=[make_account("gemini").pk])).text
    )


def test_staff_duplicate_a_catalogue_row_into_a_new_model_id(admin_client, crun_account):
    from urllib.parse import parse_qs, urlparse

    from nanoweb.providers.models import CatalogueEntry

    row = crun_account.catalogue.get(model_id="google/nano-banana-2")
    changelist = reverse("admin:providers_catalogueentry_changelist")
    answer = admin_client.post(changelist, {"action": "duplicate", "_selected_action": [row.pk]})
    assert answer.status_code == 302 and answer.url.startswith(reverse("admin:providers_catalogueentry_add"))
    initial = {key: values[0] for key, values in parse_qs(urlparse(answer.url).query).items()}
    assert initial["name"] == "Nano Banana 2" and "model_id" not in initial
    assert initial["prices"] == "1K=0.067, 2K=0.101, 4K=0.151" and "16:9" in initial["aspect_ratios"]

    form = admin_client.get(answer.url).text  # the add form starts as the copy
    assert 'value="1K=0.067, 2K=0.101, 4K=0.151"' in form
    saved = admin_client.post(
        reverse("admin:providers_catalogueentry_add"), {**initial, "model_id": "google/nano-banana-3"}
    )
    assert saved.status_code == 302
    copy = CatalogueEntry.objects.get(model_id="google/nano-banana-3")
    assert (copy.name, copy.prices, copy.aspect_ratios) == (row.name, row.prices, row.aspect_ratios)

    listing = admin_client.get(changelist).text
    assert '<span class="nowrap">1K 0.067</span><br><span class="nowrap">2K 0.101</span>' in listing


def test_staff_pause_an_account_from_the_list_and_resume_it_from_the_banner(admin_client, crun_account):
    changelist = reverse("admin:providers_provideraccount_changelist")
    admin_client.post(changelist, {"action": "pause", "_selected_action": [crun_account.pk]})
    crun_account.refresh_from_db()
    assert crun_account.paused and crun_account.paused_reason == "paused by root."

    banner = admin_client.get(reverse("studio")).text
    assert 'data-confirm="Resume crun (sim)? Automatic routing sends it new jobs again."' in banner
    assert '<button class="button secondary small" type="submit">Resume crun (sim)</button>' in banner


def test_staff_set_an_accounts_limits_and_the_list_shows_them(admin_client, make_account):
    nanophoto = make_account("nanophoto")
    url = reverse("admin:providers_provideraccount_change", args=[nanophoto.pk])
    form = {"name": nanophoto.name, "kind": "nanophoto", "base_url": nanophoto.base_url, "api_key": "",
            "enabled": "on", "priority": "100", "rate_limit": "", "per_minute": "", "per_hour": "500",
            "max_in_flight": "", "catalogue-TOTAL_FORMS": "0", "catalogue-INITIAL_FORMS": "0"}  # fmt: skip
    listed = admin_client.get(reverse("admin:providers_provideraccount_changelist")).text
    assert "10 requests a second, 100 requests an hour" in listed, "a new account starts with the vendor's limits"

    assert admin_client.post(url, form).status_code == 302

    nanophoto.refresh_from_db()
    assert (nanophoto.limits.per_second, nanophoto.limits.per_hour) == (None, 500)
    assert "500 requests an hour</td>" in admin_client.get(reverse("admin:providers_provideraccount_changelist")).text
    form["per_hour"] = "0"
    assert "Ensure this value is greater than or equal to 1" in admin_client.post(url, form).text
