"""The job's state machine: every move in the table works, every other one is refused, and
nothing but `advance` writes a job's status."""

from __future__ import annotations

import re

import pytest

from nanoweb.studio import audit
from nanoweb.studio.models import Generation, IllegalTransition
from tests.conftest import ROOT, start_job

Status = Generation.Status
PAIRS = [(old, new) for old in Status.values for new in Status.values]


@pytest.mark.parametrize("old, new", PAIRS, ids=[f"{old}->{new}" for old, new in PAIRS])
def test_every_move_in_the_table_is_allowed_and_every_other_refused(owner, crun_account, old, new):
    [job] = start_job(owner, crun_account, "google/nano-banana-2")
    Generation.objects.filter(pk=job.pk).update(status=old)  # the starting state, set up by hand
    job.status = old

    if new in Generation.TRANSITIONS[old]:
        assert job.advance(old, new)
        job.refresh_from_db()
        assert job.status == new
        assert (job.finished_at is not None) == (new in Generation.TERMINAL)
        if new in Generation.TERMINAL:
            assert audit.ledger_problems() == [], "a final state settles or refunds in the same transaction"
    else:
        with pytest.raises(IllegalTransition):
            job.advance(old, new)
        job.refresh_from_db()
        assert job.status == old


def test_the_table_has_every_state_and_final_states_lead_nowhere():
    assert set(Generation.TRANSITIONS) == set(Status.values)
    assert all(not Generation.TRANSITIONS[state] for state in Generation.TERMINAL)
    assert all(Generation.TRANSITIONS[state] for state in Generation.ACTIVE)


def test_a_move_from_a_set_of_states_is_checked_for_each(owner, crun_account):
    [job] = start_job(owner, crun_account, "google/nano-banana-2")
    with pytest.raises(IllegalTransition, match="queued"):
        job.advance(Generation.ACTIVE, Status.SUCCEEDED)  # a queued job cannot succeed


# The two lines of Generation.advance that write the status.
ADVANCE = {
    "updated = Generation.objects.filter(pk=self.pk, status__in=olds).update(status=new, **fields)",
    "self.status = new",
}


def test_no_code_but_advance_writes_a_status():
    """update(status=...) or .status = ... elsewhere would bypass the table."""
    offenders = []
    for path in (ROOT / "nanoweb").rglob("*.py"):
        if "migrations" in path.parts or "simulator" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"update\([^)]*\bstatus=|\.status = ", line) and line.strip() not in ADVANCE:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
