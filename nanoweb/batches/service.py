"""Batches: many jobs made as one, for the pages and the API alike.

`create_batch` checks every row, refuses the whole submission when one row is wrong or the
total does not fit the budget, and otherwise starts every job (all of them or none).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django_q.tasks import async_task

from nanoweb.batches import rows as batch_rows
from nanoweb.batches.models import Batch, BatchItem
from nanoweb.batches.rows import Defaults, Row
from nanoweb.boards import items
from nanoweb.boards.models import Board
from nanoweb.credits import ledger
from nanoweb.credits.models import LedgerEntry
from nanoweb.providers import routing
from nanoweb.studio.forms import NotStarted
from nanoweb.studio.jobs import pipeline
from nanoweb.studio.jobs.spec import JobSpec
from nanoweb.studio.models import Generation

Status = Generation.Status
MAX_COMPARED = 4


class Refused(NotStarted):
    """Some rows are wrong: nothing was started. `rows` says which, with their line numbers."""

    def __init__(self, rows: list[Row]):
        self.rows = rows
        bad = [row for row in rows if row.errors]
        said = [f"{f'Line {row.line}: ' if row.line else ''}{'; '.join(row.errors)}" for row in bad[:5]]
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        super().__init__(f"{'. '.join(said)}{more}. Nothing was run or charged.")


def total(rows: list[Row]) -> Decimal:
    return sum((row.price for row in rows), Decimal(0))


def create_batch(
    *, owner, rows: list[Row], defaults: Defaults | None = None, board: Board | None = None, cheaper: bool = False,
    title: str = "",
) -> Batch:  # fmt: skip
    """Check the rows and start them as one batch. Raises Refused (a row is wrong), ledger.
    OverBudget (the whole does not fit: nothing starts) or pipeline.NoAccount."""
    checked = batch_rows.check(owner, rows, defaults or Defaults(), cheaper=cheaper)
    if any(row.errors for row in checked):
        raise Refused(checked)
    images = sum(row.images for row in checked)
    if board is not None and not Board.visible(owner).filter(pk=board.pk).exists():
        raise Refused([Row(0, {}, ["that board is not available"])])
    with transaction.atomic():
        ledger.refuse_unless_affordable(owner, total(checked), images)
        batch = Batch.objects.create(
            owner=owner, title=(title or checked[0].values["prompt"])[:200], board=board, cheaper=cheaper
        )
        for row in checked:
            assert row.spec is not None
            jobs = pipeline.start(owner=owner, spec=row.spec)
            BatchItem.objects.bulk_create([BatchItem(batch=batch, generation=job, line=row.line) for job in jobs])
            for chosen in {board, row.board} - {None}:
                items.add(chosen, jobs, by=owner)  # type: ignore[arg-type]
        if cheaper:
            transaction.on_commit(lambda: async_task("nanoweb.batches.vendor.send", batch.pk))
    return batch


def compare(*, owner, spec: JobSpec, models: list[str], board: Board | None = None) -> Batch:
    """One prompt on 2-4 models at once, one image each, as one set (one group) and one batch.
    Raises Refused (a model cannot take these options), OverBudget or NoAccount."""
    names = list(dict.fromkeys([spec.model_name, *models]))
    if not 2 <= len(names) <= MAX_COMPARED:
        raise Refused([Row(0, {}, [f"compare 2 to {MAX_COMPARED} different models"])])
    group = uuid.uuid4()
    specs = [replace(spec, model_name=name, count=1, group=group) for name in names]
    prices, refused = [], []
    for each in specs:
        fits = routing.candidates(each.need)
        if not fits:
            why = {
                r.unsupported(each.options, each.need.references)
                for r in routing.offered().filter(name=each.model_name)
            }
            reason = "; ".join(sorted(why - {""})) or "no account serves it now"
            refused.append(Row(0, {"prompt": spec.prompt, "model": each.model_name}, [f"{each.model_name}: {reason}"]))
        else:
            prices.append(fits[0].price(each.options.resolution or fits[0].default_resolution))
    if refused:
        raise Refused(refused)
    with transaction.atomic():
        ledger.refuse_unless_affordable(owner, sum(prices, Decimal(0)), len(specs))
        batch = Batch.objects.create(owner=owner, kind=Batch.Kind.COMPARE, title=spec.prompt[:200], board=board)
        for n, each in enumerate(specs, 1):
            jobs = pipeline.start(owner=owner, spec=each)
            BatchItem.objects.bulk_create([BatchItem(batch=batch, generation=job, line=n) for job in jobs])
            if board is not None:
                items.add(board, jobs, by=owner)
    return batch


@dataclass(frozen=True)
class Progress:
    done: int
    failed: int  # failed or canceled: not charged
    waiting: int  # not started yet
    running: int
    charged: Decimal
    held: Decimal  # reserved for what has not finished

    @property
    def total(self) -> int:
        return self.done + self.failed + self.waiting + self.running

    @property
    def finished(self) -> bool:
        return not (self.waiting or self.running)


def progress(batch: Batch) -> Progress:
    jobs = Generation.objects.filter(batch_item__batch=batch)
    counts = jobs.aggregate(
        done=Count("pk", filter=Q(status=Status.SUCCEEDED)),
        failed=Count("pk", filter=Q(status__in=[Status.FAILED, Status.CANCELED])),
        waiting=Count("pk", filter=Q(status=Status.QUEUED)),
        running=Count("pk", filter=Q(status__in=Generation.ACTIVE - {Status.QUEUED})),
    )
    lines = ledger.sums(LedgerEntry.objects.filter(generation__batch_item__batch=batch))
    Kind = LedgerEntry.Kind
    held = lines[Kind.RESERVE] - lines[Kind.SETTLE] - lines[Kind.RELEASE]
    return Progress(**counts, charged=lines[Kind.SETTLE], held=held)


def record_finished(batch_id: int) -> bool:
    """Note that the batch has finished if none of its jobs is still active: True for the one
    call that noted it. A batch gains no jobs after it is made and an ended job never runs again,
    so once nothing is active it stays so, and the conditional update lets one caller through."""
    if Generation.objects.filter(batch_item__batch_id=batch_id, status__in=Generation.ACTIVE).exists():
        return False
    return bool(Batch.objects.filter(pk=batch_id, finished_at__isnull=True).update(finished_at=timezone.now()))


def cost_total(batch: Batch) -> Decimal:
    """What the batch's jobs were priced at when they started (what the preview showed)."""
    return Generation.objects.filter(batch_item__batch=batch).aggregate(total=Sum("price"))["total"] or Decimal(0)


def cancel(batch: Batch) -> int:
    """Cancel (and refund) what has not started; a vendor's batch is cancelled whole, there
    and here, since none of its images exists before it ends. How many jobs were cancelled."""
    jobs = Generation.objects.filter(batch_item__batch=batch).select_related("account")
    if batch.cheaper:
        from nanoweb.batches import vendor

        vendor.cancel(batch)
        waiting = jobs.filter(status__in=Generation.ACTIVE - {Status.FINISHING})
    else:
        waiting = jobs.filter(status=Status.QUEUED)
    return sum(pipeline.cancel(job) for job in waiting)
