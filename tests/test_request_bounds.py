"""Every integer and date a request carries is bounded: a value out of range is a 400 with a
message or is ignored, never a server error (and never a traceback)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import start_job

HUGE = "9" * 20  # beyond any database integer


@pytest.fixture
def member_client(client, owner):
    client.raise_request_exception = False
    client.force_login(owner)
    return client


@pytest.fixture
def staff_client(client, staff):
    client.raise_request_exception = False
    client.force_login(staff)
    return client


@pytest.mark.parametrize(
    "url",
    [
        f"/live/cards?v={HUGE}.1",
        f"/live/cards?v=1.{HUGE}",
        f"/live/detail?v={HUGE}.{HUGE}",
        f"/?pick={HUGE}",
        f"/?from={HUGE}",
        f"/?prompt={HUGE}",
        f"/?board={HUGE}",
        f"/?routing={HUGE}",
        f"/generate/options?routing={HUGE}&model=Nano+Banana+2",
        f"/generate/options?routing={HUGE}&model=Nano+Banana+2&count={HUGE}",
        f"/gallery/download?pick={HUGE}",
        f"/generations/{HUGE}",
        f"/generations/{HUGE}/card",
        f"/images/{HUGE}/original",
        f"/generations/1/references/{HUGE}",
        "/gallery?until=9999-12-31",
        "/gallery?since=0001-01-01&until=0001-01-01",
        f"/gallery?before=1.{'9' * 19}",
        f"/gallery?provider={HUGE}",
        f"/gallery?stars={HUGE}",
        f"/boards/{HUGE}",
        f"/boards/add?pick={HUGE}",
        f"/prompts?from={HUGE}",
    ],
)
def test_an_out_of_range_number_or_date_in_a_member_s_request_is_no_server_error(member_client, crun_account, url):
    response = member_client.get(url)
    assert response.status_code in (200, 204, 302, 400, 404), (url, response.status_code)


@pytest.mark.parametrize(
    "url",
    [
        "/credits/review?start=9999-12-31&end=9999-12-31",
        "/credits/review/ledger.csv?start=0001-01-01&end=9999-12-31",
        f"/credits/review/people/{HUGE}",
        f"/credits/budgets/{HUGE}",
        f"/providers/{HUGE}/resume",
    ],
)
def test_an_out_of_range_number_or_date_in_a_staff_request_is_no_server_error(staff_client, url):
    response = staff_client.get(url)
    assert response.status_code in (200, 302, 400, 404, 405), (url, response.status_code)


def test_a_routing_value_beyond_any_id_is_refused_with_the_generic_message(member_client, crun_account):
    model = crun_account.catalogue.first()
    response = member_client.post(reverse("generate"), {"prompt": "p", "model": model.name, "routing": HUGE})
    assert response.status_code in (200, 400)
    assert "That account is not available" in response.content.decode()


def test_posted_ids_beyond_any_row_are_no_server_error(member_client, owner, crun_account):
    [job] = start_job(owner, crun_account, crun_account.catalogue.first().model_id)
    for url, data in [
        (reverse("rate", args=[job.pk]), {"stars": HUGE}),
        ("/boards/add", {"pick": HUGE, "board": HUGE}),
        (reverse("generate"), {"prompt": "p", "model": "Nano Banana 2", "reference_results": HUGE, "board": HUGE}),
    ]:
        response = member_client.post(url, data)
        assert response.status_code in (200, 302, 400, 404), (url, response.status_code)
