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
