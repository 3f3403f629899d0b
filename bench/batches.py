"""Batch benchmark: a 200-row CSV over three models beside a teammate's single images, and
50 prompts through Gemini's Batch API at half price.

    .venv/bin/python bench/batches.py          # both (about two minutes)
    .venv/bin/python bench/batches.py list     # or one of: list, vendor

Each scenario runs on a fresh SQLite database with the simulator (Gemini protocol) and
`manage.py qcluster`, as bench/pipeline.py starts them. Batches go in through the service
the Batch page uses (`nanoweb.batches.service.create_batch`), after the page's own check.

    list    a teammate's single images (one every 1.5 s) on an idle studio, then the same
            while a 200-row CSV over Nano Banana 2.1, Pro and 2 Lite runs: p50/p95 of the
            teammate's time to a stored image, the batch's time, cost shown == cost charged
    vendor  50 prompts "cheaper, within a day": sent as vendor batches, each image charged
            half the catalogue price, the ledger checked
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import Stack, bench_account, p95  # noqa: E402

LATENCY = 2.0
SINGLES = int(os.environ.get("BENCH_SINGLES", "30"))  # the teammate's images per phase
MODELS = ("Nano Banana 2.1", "Nano Banana Pro", "Nano Banana 2 Lite")


def people():
    from django.contrib.auth import get_user_model

    from nanoweb.credits.models import Budget

    users = []
    for name in ("bench", "teammate"):
        user, _ = get_user_model().objects.get_or_create(username=name)
        Budget.objects.update_or_create(user=user, defaults={"amount": Decimal(1_000_000), "period": "none"})
        users.append(user)
    return users


def singles(teammate, label: str) -> list[int]:
    """The teammate's single images, one every 1.5 s, as the studio form starts them."""
    from nanoweb.providers.models import Options
    from nanoweb.studio.jobs import pipeline
    from nanoweb.studio.jobs.spec import JobSpec

    pks = []
    for n in range(SINGLES):
        spec = JobSpec(prompt=f"{label} single {n}", model_name="Nano Banana 2.1", options=Options(resolution="1K"))
        pks += [job.pk for job in pipeline.start(owner=teammate, spec=spec)]
        time.sleep(1.5)
    return pks


def times(pks: list[int], timeout: float = 300) -> list[float]:
    from nanoweb.studio.models import Generation

    deadline = time.monotonic() + timeout
    while Generation.objects.filter(pk__in=pks, status__in=Generation.ACTIVE).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("jobs did not finish")
        time.sleep(0.25)
    jobs = Generation.objects.filter(pk__in=pks)
    bad = [job.status for job in jobs if job.status != Generation.Status.SUCCEEDED]
    if bad:
        raise RuntimeError(f"{len(bad)} jobs did not succeed: {set(bad)}")
    return [(job.finished_at - job.created_at).total_seconds() for job in jobs]


def parts(pks: list[int]) -> str:
    """Medians of where a job's time went: waiting to be sent / the call / storing (seconds)."""
    from nanoweb.studio.models import Generation

    jobs = list(Generation.objects.filter(pk__in=pks))
    wait = [(job.submitted_at - job.created_at).total_seconds() for job in jobs]
    call = [job.provider_seconds or 0.0 for job in jobs]
    store = [(job.finished_at - job.submitted_at).total_seconds() - (job.provider_seconds or 0) for job in jobs]
    return "/".join(f"{statistics.median(values):.2f}" for values in (wait, call, store))


def slowest(pks: list[int], n: int = 3) -> str:
    """The slowest jobs' wait/call/store, to see where a tail comes from."""
    from nanoweb.studio.models import Generation

    jobs = sorted(Generation.objects.filter(pk__in=pks), key=lambda job: job.finished_at - job.created_at)[-n:]
    return ",".join(
        f"{(j.submitted_at - j.created_at).total_seconds():.2f}/{j.provider_seconds or 0:.2f}/"
        f"{(j.finished_at - j.submitted_at).total_seconds() - (j.provider_seconds or 0):.2f}"
        for j in jobs
    )


def scenario_list() -> dict[str, object]:
    with Stack(latency=LATENCY):
        from nanoweb.batches import rows, service
        from nanoweb.credits.models import LedgerEntry
        from nanoweb.studio import audit
        from nanoweb.studio.models import Generation

        bench_account("bench gemini", "gemini", rate_limit=100)
        owner, teammate = people()
        idle_pks = singles(teammate, "idle")
        idle = times(idle_pks)

        # 20 distinct prompts, as bench/pipeline.py: the simulator's rendering is cached, not the benchmark's CPU.
        csv = "prompt,model\n" + "".join(f"bench row {n % 20},{MODELS[n % 3]}\n" for n in range(200))
        checked = rows.check(owner, rows.from_csv(csv), rows.Defaults("Nano Banana 2.1"))
        assert not any(row.errors for row in checked)
        shown = service.total(checked)
        batch = service.create_batch(owner=owner, rows=rows.from_csv(csv), defaults=rows.Defaults("Nano Banana 2.1"))
        busy_pks = singles(teammate, "busy")
        busy = times(busy_pks)
        batch_pks = list(Generation.objects.filter(batch_item__batch=batch).values_list("pk", flat=True))
        times(batch_pks, timeout=600)
        made = Generation.objects.filter(pk__in=batch_pks)
        batch_seconds = (max(j.finished_at for j in made) - min(j.created_at for j in made)).total_seconds()
        idle_pks_after = singles(teammate, "idle again")  # the machine's load moves: idle once more, after
        idle_after = times(idle_pks_after)
        charged = sum(
            LedgerEntry.objects.filter(generation__batch_item__batch=batch, kind=LedgerEntry.Kind.SETTLE).values_list(
                "amount", flat=True
            ),
            Decimal(0),
        )
        return {
            "idle_p50": round(statistics.median(idle), 2), "idle_p95": round(p95(idle), 2),
            "busy_p50": round(statistics.median(busy), 2), "busy_p95": round(p95(busy), 2),
            "idle_after_p95": round(p95(idle_after), 2),
            "busy_vs_idle_p95": f"{(p95(busy) / p95(idle) - 1) * 100:+.1f}%",
            "idle_wait/call/store": parts(idle_pks), "busy_wait/call/store": parts(busy_pks),
            "busy_slowest": slowest(busy_pks), "idle_slowest": slowest(idle_pks),
            "batch_rows": len(batch_pks), "batch_s": round(batch_seconds, 1), "shown": shown, "charged": charged,
            "ledger_problems": len(audit.ledger_problems()),
        }  # fmt: skip


def scenario_vendor() -> dict[str, object]:
    with Stack(latency=LATENCY, VENDOR_BATCH_POLL_SECONDS="2"):
        from nanoweb.batches import rows, service
        from nanoweb.batches.models import VendorBatch
        from nanoweb.credits.models import LedgerEntry
        from nanoweb.studio import audit
        from nanoweb.studio.models import Generation

        account = bench_account("bench gemini", "gemini", rate_limit=100)
        owner, _ = people()
        text = "\n".join(f"harbour {n}" for n in range(50))
        defaults = rows.Defaults("Nano Banana 2.1", resolution="1K")
        checked = rows.check(owner, rows.from_lines(text), defaults, cheaper=True)
        shown = service.total(checked)
        began = time.monotonic()
        batch = service.create_batch(owner=owner, rows=rows.from_lines(text), defaults=defaults, cheaper=True)
        pks = list(Generation.objects.filter(batch_item__batch=batch).values_list("pk", flat=True))
        times(pks, timeout=300)
        list_price = account.catalogue.get(model_id="gemini-nano-banana-2.1").price("1K")
        settled = list(
            LedgerEntry.objects.filter(generation__in=pks, kind=LedgerEntry.Kind.SETTLE).values_list(
                "amount", flat=True
            )
        )
        return {
            "jobs": len(pks), "vendor_batches": VendorBatch.objects.filter(batch=batch).count(),
            "seconds": round(time.monotonic() - began, 1), "list_price": list_price,
            "each_charged": sorted(set(settled)), "shown": shown, "charged": sum(settled, Decimal(0)),
            "ledger_problems": len(audit.ledger_problems()),
        }  # fmt: skip


SCENARIOS = {"list": scenario_list, "vendor": scenario_vendor}

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanoweb.settings")
    chosen = sys.argv[1:] or list(SCENARIOS)
    if len(chosen) > 1:  # each in its own process: Django is set up once per process, on one database
        for name in chosen:
            subprocess.run([sys.executable, __file__, name], check=True)
    else:
        figures = SCENARIOS[chosen[0]]()
        print(chosen[0], " ".join(f"{key}={value}" for key, value in figures.items()), flush=True)
