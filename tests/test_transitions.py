"""The job's state machine: every move in the table works, every other one is refused, and
nothing but `advance` writes a job's status."""

from __future__ import annotations

import ast
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


def status_writes(source: str, filename: str = "<source>") -> list[str]:
    """Every place in `source` that writes a job's status other than `Generation.advance`:
    an `update(status=...)` or `bulk_update([...], [... "status" ...])`, an assignment to
    `.status`, or a job's `save()` without `update_fields` (a job's receiver is named
    `generation` or `job`, as everywhere in nanoweb), however the call is split over lines."""
    found = []

    def visit(node: ast.AST, inside_advance: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside_advance = node.name == "advance"
        if not inside_advance:
            where = f"{filename}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                keywords = {keyword.arg for keyword in node.keywords}
                method, receiver = node.func.attr, node.func.value
                if method == "update" and "status" in keywords:
                    found.append(f"{where}: update(status=...)")
                if method == "bulk_update" and "status" in ast.unparse(node):
                    found.append(f"{where}: bulk_update of status")
                named = isinstance(receiver, ast.Name) and re.search(r"generation|job", receiver.id)
                if method == "save" and named and "update_fields" not in keywords:
                    found.append(f"{where}: {receiver.id}.save() without update_fields")
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                for target in targets:
                    if isinstance(target, ast.Attribute) and target.attr == "status":
                        found.append(f"{where}: .status = ...")
        for child in ast.iter_child_nodes(node):
            visit(child, inside_advance)

    visit(ast.parse(source), False)
    return found


def test_the_status_guard_sees_writes_split_over_lines_and_spares_advance():
    source = """
def cancel(generation):
    Generation.objects.filter(pk=1).update(
        status="canceled",
    )
    generation.status = "failed"
    generation.save()
    job.save(update_fields=["private"])

class Generation:
    def advance(self, old, new):
        Generation.objects.filter(pk=self.pk).update(status=new)
        self.status = new
"""
    assert [line.split(": ", 1)[1] for line in status_writes(source)] == [
        "update(status=...)",
        ".status = ...",
        "generation.save() without update_fields",
    ]


def test_no_code_but_advance_writes_a_status():
    offenders = []
    for path in (ROOT / "nanoweb").rglob("*.py"):
        if "migrations" in path.parts or "simulator" in path.parts:
            continue
        offenders += status_writes(path.read_text(), str(path.relative_to(ROOT)))
    assert offenders == []
