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
