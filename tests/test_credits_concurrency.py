"""Reservation is atomic: 50 parallel submissions against a budget for 10 accept exactly 10.

Runs on SQLite and again on PostgreSQL: `make test` runs the whole suite on both."""

from __future__ import annotations

import threading
from decimal import Decimal

from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from nanoweb.credits import ledger
from nanoweb.credits.models import Budget, LedgerEntry
from nanoweb.studio import audit
from nanoweb.studio.models import Generation

PARALLEL = 50


def test_fifty_parallel_submissions_against_a_budget_for_ten_accept_exactly_ten(transactional_db, owner, crun_account):
    price = Decimal("0.067")  # Nano Banana 2 at 1K
    Budget.objects.create(user=owner, amount=price * 10, period="month")
    data = {"prompt": "race", "routing": crun_account.pk, "model": "Nano Banana 2", "resolution": "1K"}
    statuses, barrier = [], threading.Barrier(PARALLEL)

    def submit():
        client = Client()
        client.force_login(owner)
        barrier.wait()  # all fifty go at once
        try:
            statuses.append(client.post(reverse("generate"), data, HTTP_HX_REQUEST="true").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    print(f"\n{connection.vendor}: {statuses.count(201)} of {PARALLEL} parallel submissions accepted")
    assert len(statuses) == PARALLEL
    assert statuses.count(201) == 10
    assert Generation.objects.count() == 10
    assert LedgerEntry.objects.filter(kind="reserve").count() == 10
    assert ledger.standing(owner).left == 0
    assert audit.ledger_problems() == []
