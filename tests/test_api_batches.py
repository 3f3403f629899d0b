"""Batches through the HTTP API, over real HTTP (the test server): create with every row checked
(line numbers), budgets, idempotent creates, who may read and cancel, and progress."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import requests

from nanoweb.api.models import ApiToken, IdempotencyKey
from nanoweb.batches import service
from nanoweb.batches.models import Batch
from nanoweb.boards.models import Board
from nanoweb.credits.models import Budget, LedgerEntry
from nanoweb.providers.models import ProviderAccount
from nanoweb.studio import audit
from nanoweb.studio.models import Generation
from tests.test_api import Api, token_for
from tests.test_providers import run_to_end

MODEL = "Nano Banana 2.1"  # 0.067 USD an image at its default resolution (1K)


@pytest.fixture
def gemini(make_account):
    account = make_account("gemini")
    ProviderAccount.objects.filter(pk=account.pk).update(rate_limit=1000)
    return account


@pytest.fixture
def api_as(live_server):
    def make(user, scope: str = ApiToken.Scope.GENERATE) -> Api:
        return Api(live_server.url, token_for(user, scope))

    return make


def nothing_stored() -> bool:
    return not (Generation.objects.exists() or Batch.objects.exists() or LedgerEntry.objects.exists())


def prompts(*texts: str) -> dict:
    return {"rows": [{"prompt": text} for text in texts], "defaults": {"model": MODEL}}


def test_a_batch_runs_and_its_progress_says_what_is_done_charged_and_held(api_as, owner, gemini):
    api = api_as(owner)
    body = {
        "rows": [
            {"prompt": "a red kite", "count": 2},
            {"prompt": "a blue kite", "model": "Nano Banana Pro", "resolution": "4K", "format": "png"},
        ],
        "defaults": {"model": MODEL, "aspect_ratio": "16:9"},
        "title": "Kites",
    }
    created = api.post("/batches", json=body)
    assert created.status_code == 201, created.text
    batch = created.json()
    assert (batch["title"], batch["owner"], batch["kind"], batch["finished"]) == ("Kites", "olivia", "list", False)
    # 2 × 0.067 + 0.24, all held until made
    assert batch["progress"] == {
        "done": 0, "failed": 0, "waiting": 3, "running": 0, "total": 3, "charged": "0", "held": "0.374",
        "priced": "0.374",
    }  # fmt: skip
    jobs = Generation.objects.filter(pk__in=batch["jobs"]).order_by("batch_item__line", "pk")
    assert [job.pk for job in jobs] == batch["jobs"]
    assert [(job.prompt, job.model_label, job.aspect_ratio, job.resolution) for job in jobs] == [
        ("a red kite", MODEL, "16:9", "1K"), ("a red kite", MODEL, "16:9", "1K"),
        ("a blue kite", "Nano Banana Pro", "16:9", "4K"),
    ]  # fmt: skip
    assert api.get(f"/jobs/{batch['jobs'][2]}").json()["output_format"] == "png"

    run_to_end(jobs[0])
    halfway = api.get(f"/batches/{batch['id']}").json()
    assert (halfway["progress"]["done"], halfway["progress"]["waiting"], halfway["finished"]) == (1, 2, False)
    assert (halfway["progress"]["charged"], halfway["progress"]["held"]) == ("0.067", "0.307")
    for job in jobs[1:]:
        run_to_end(job)
    done = api.get(f"/batches/{batch['id']}").json()
    assert done["progress"] == {
        "done": 3, "failed": 0, "waiting": 0, "running": 0, "total": 3, "charged": "0.374", "held": "0",
        "priced": "0.374",
    }  # fmt: skip
    assert done["finished"] and done["finished_at"] and done["url"].endswith(f"/batches/{batch['id']}")
    assert audit.ledger_problems() == []


def test_wrong_rows_are_refused_with_their_lines_and_nothing_is_stored_or_charged(api_as, owner, gemini):
    rows = [
        {"prompt": "a kite"},
        {"prompt": "a kite", "model": "Nano Banana 9"},
        {"prompt": "a kite", "count": 5},
        {"prompt": ""},
        {"prompt": "a kite", "model": "Nano Banana 2 Lite", "resolution": "4K"},
        {"prompt": "a kite", "board": "Nowhere"},
        {"prompt": "a kite", "references": [99999]},
    ]
    response = api_as(owner).post("/batches", json={"rows": rows, "defaults": {"model": MODEL}})
    assert response.status_code == 422
    refused = response.json()
    assert refused["code"] == "invalid_rows" and "Nothing was run or charged" in refused["message"]
    assert [row["line"] for row in refused["rows"]] == [2, 3, 4, 5, 6, 7]
    errors = {row["line"]: " ".join(row["errors"]) for row in refused["rows"]}
    assert errors[2].startswith("unknown model 'Nano Banana 9'")
    assert errors[3] == "count '5': 1 to 4 images"
    assert errors[4] == "no prompt"
    assert errors[5] == "Nano Banana 2 Lite offers no resolution 4K"
    assert errors[6] == "no board named 'Nowhere' that you can see"
    assert errors[7].startswith("references:")
    assert nothing_stored()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"rows": []}, "rows"),
        ({"rows": [{"prompt": f"kite {n}"} for n in range(501)], "defaults": {"model": MODEL}}, "rows"),
        ({"rows": [{"prompt": "a kite", "colour": "red"}]}, "rows.0.colour"),
        ({"rows": [{"prompt": "a kite", "count": "two"}]}, "rows.0.count"),
        ({"prompts": ["a kite"]}, "rows"),
        ({"rows": [{"prompt": "a kite"}], "board": 99999}, "board"),
    ],
)
def test_a_malformed_batch_is_refused_with_the_field_at_fault(api_as, owner, gemini, body, field):
    response = api_as(owner).post("/batches", json={"defaults": {"model": MODEL}, **body})
    assert (response.status_code, response.json()["code"]) == (422, "invalid")
    assert field in response.json()["fields"], response.json()
    assert nothing_stored()


def test_another_members_private_board_is_not_a_batchs_board(api_as, owner, teammate, gemini):
    theirs = Board.objects.create(name="Tom's", owner=teammate, private=True)
    response = api_as(owner).post("/batches", json={**prompts("a kite"), "board": theirs.pk})
    assert (response.status_code, response.json()["fields"]) == (422, {"board": ["No such board you can see."]})
    assert nothing_stored()


def test_a_batchs_results_go_on_its_board(api_as, owner, gemini):
    board = Board.objects.create(name="Kites", owner=owner)
    created = api_as(owner).post("/batches", json={**prompts("a kite", "a second kite"), "board": board.pk})
    assert (created.status_code, created.json()["board"]) == (201, board.pk)
    assert sorted(board.items.values_list("pk", flat=True)) == created.json()["jobs"]


def test_a_batch_over_budget_is_402_and_nothing_starts(api_as, owner, gemini):
    Budget.objects.create(user=owner, amount=Decimal("0.30"), period="month")
    response = api_as(owner).post("/batches", json=prompts(*(f"kite {n}" for n in range(5))))  # 5 × 0.067
    assert (response.status_code, response.json()["code"]) == (402, "over_budget")
    assert nothing_stored()


def test_a_read_token_reads_a_batch_but_may_not_create_or_cancel_one(api_as, owner, gemini):
    batch = api_as(owner).post("/batches", json=prompts("a kite")).json()
    reader = api_as(owner, ApiToken.Scope.READ)
    assert reader.get(f"/batches/{batch['id']}").status_code == 200
    for path in ("/batches", f"/batches/{batch['id']}/cancel"):
        response = reader.post(path, json=prompts("another kite"))
        assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")
    assert Batch.objects.count() == 1
    assert set(Generation.objects.values_list("status", flat=True)) == {"queued"}


def test_a_retried_create_with_the_same_key_answers_the_first_batch_and_charges_once(api_as, owner, gemini):
    api = api_as(owner)
    key = {"Idempotency-Key": "list-7"}
    first = api.post("/batches", json=prompts("a kite", "a second kite"), headers=key)
    again = api.post("/batches", json=prompts("a kite", "a second kite"), headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.json()["id"] == first.json()["id"] and again.json()["jobs"] == first.json()["jobs"]
    assert Batch.objects.count() == 1 and LedgerEntry.objects.filter(kind="reserve").count() == 2
    other = api.post("/batches", json=prompts("a third kite"), headers=key)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    job_create = api.post("/jobs", json={"prompt": "a kite", "model": MODEL}, headers=key)
    assert (job_create.status_code, job_create.json()["code"]) == (422, "idempotency_key_reused")
    assert Batch.objects.count() == 1 and Generation.objects.count() == 2
    assert IdempotencyKey.objects.get().batch_id == first.json()["id"]


def test_concurrent_retries_with_one_key_make_one_batch(api_as, owner, gemini):
    api = api_as(owner)
    answers: list[requests.Response] = []

    def send() -> None:
        answers.append(api.post("/batches", json=prompts("race", "race 2"), headers={"Idempotency-Key": "race-b"}))

    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [answer.status_code for answer in answers] == [201] * 5
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert Batch.objects.count() == 1 and LedgerEntry.objects.filter(kind="reserve").count() == 2


def test_a_refused_create_keeps_no_key_so_a_corrected_retry_runs(api_as, owner, gemini):
    api = api_as(owner)
    key = {"Idempotency-Key": "list-8"}
    wrong = api.post("/batches", json={"rows": [{"prompt": "a kite", "count": 9}], "defaults": {"model": MODEL}},
                     headers=key)  # fmt: skip
    assert wrong.status_code == 422 and not IdempotencyKey.objects.exists()
    fixed = api.post("/batches", json={"rows": [{"prompt": "a kite", "count": 2}], "defaults": {"model": MODEL}},
                     headers=key)  # fmt: skip
    assert fixed.status_code == 201 and len(fixed.json()["jobs"]) == 2


@pytest.mark.parametrize(
    "who, sees", [("owner", True), ("teammate", False), ("outsider", False), ("staff", True)]
)  # fmt: skip
def test_a_batch_is_seen_by_its_owner_and_staff_as_on_its_page(
    api_as, owner, teammate, outsider, staff, gemini, who, sees
):  # fmt: skip
    batch = api_as(owner).post("/batches", json=prompts("a kite")).json()
    user = {"owner": owner, "teammate": teammate, "outsider": outsider, "staff": staff}[who]
    response = api_as(user).get(f"/batches/{batch['id']}")
    if sees:
        assert (response.status_code, response.json()["jobs"]) == (200, batch["jobs"])
    else:
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
        assert "batch" in response.json()["message"]
    assert api_as(owner).get("/batches/99999").json()["code"] == "not_found"


def test_cancel_stops_what_has_not_started_refunds_it_and_only_once(api_as, owner, teammate, staff, gemini):
    batch = api_as(owner).post("/batches", json=prompts("a", "b", "c")).json()
    run_to_end(Generation.objects.get(pk=batch["jobs"][0]))
    refused = api_as(teammate).post(f"/batches/{batch['id']}/cancel")
    assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
    assert Generation.objects.filter(status="queued").count() == 2
    canceled = api_as(owner).post(f"/batches/{batch['id']}/cancel")
    assert canceled.status_code == 200
    answer = canceled.json()
    assert (answer["canceled"], answer["finished"]) == (2, True)
    assert {k: answer["progress"][k] for k in ("done", "failed", "waiting", "charged", "held")} == {
        "done": 1, "failed": 2, "waiting": 0, "charged": "0.067", "held": "0",
    }  # fmt: skip
    again = api_as(owner).post(f"/batches/{batch['id']}/cancel")
    assert (again.status_code, again.json()["code"]) == (409, "already_ended")
    assert LedgerEntry.objects.filter(kind="release").count() == 2
    assert audit.ledger_problems() == []


def test_staff_cancel_anyones_batch(api_as, owner, staff, gemini):
    batch = api_as(owner).post("/batches", json=prompts("a", "b")).json()
    canceled = api_as(staff).post(f"/batches/{batch['id']}/cancel")
    assert (canceled.status_code, canceled.json()["canceled"]) == (200, 2)
    assert set(Generation.objects.values_list("status", flat=True)) == {"canceled"}


def test_a_cheaper_batch_goes_through_the_vendors_batch_api_at_half_price(api_as, owner, gemini):
    created = api_as(owner).post("/batches", json={**prompts("a", "b"), "cheaper": True})
    assert created.status_code == 201, created.text
    assert created.json()["cheaper"] and created.json()["progress"]["priced"] == "0.067"  # 2 × 0.0335
    assert set(Generation.objects.values_list("lane", flat=True)) == {Generation.VENDOR}
    assert service.cost_total(Batch.objects.get()) == Decimal("0.067")


def test_a_cheaper_batch_where_no_account_offers_one_is_refused_by_row(api_as, owner, crun_account):
    response = api_as(owner).post(
        "/batches", json={"rows": [{"prompt": "a"}], "defaults": {"model": "Nano Banana 2"}, "cheaper": True}
    )
    assert (response.status_code, response.json()["code"]) == (422, "invalid_rows")
    assert "vendor's batch" in response.json()["rows"][0]["errors"][0]
    assert nothing_stored()
