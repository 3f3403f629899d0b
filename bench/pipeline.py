"""Pipeline benchmark: throughput, completion overhead, politeness, memory, CPU per job.

    .venv/bin/python bench/pipeline.py              # every scenario (about 5 minutes)
    .venv/bin/python bench/pipeline.py throughput   # or: overhead, callbacks, memory, crash, failover

Each scenario runs against a fresh SQLite database in a temporary folder, the simulator in
its own process, and a `manage.py qcluster` with default settings (plus `runserver` to take
callbacks). Jobs go in through the same service the studio's form uses. The figures come
last, as one line of name=value pairs.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.services import free_port  # noqa: E402

PYTHON = sys.executable


class Stack:
    """Simulator, workers and (for callbacks) a web server on one temporary database."""

    def __init__(self, *, latency: float, callbacks: bool = False):
        self.data = Path(tempfile.mkdtemp(prefix="nanoweb-bench-"))
        self.sim_port, self.web_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "DEBUG": "1",
            "NANOWEB_DATA_DIR": str(self.data),
            "SIMULATOR_URL": f"http://127.0.0.1:{self.sim_port}",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.web_port}" if callbacks else "",
            "LOG_LEVEL": "WARNING",
        }
        self.latency, self.callbacks = latency, callbacks
        self.processes: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> Stack:
        os.environ.update(self.env)
        subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True)
        self.spawn(
            "simulator",
            "-m",
            "nanoweb.providers.simulator",
            "--port",
            str(self.sim_port),
            "--latency",
            str(self.latency),
        )
        if self.callbacks:
            self.spawn("web", "manage.py", "runserver", f"127.0.0.1:{self.web_port}", "--noreload")
        self.spawn("workers", "manage.py", "qcluster")
        import django

        django.setup()
        self.wait_for_http(f"http://127.0.0.1:{self.sim_port}/_sim/stats")
        if self.callbacks:
            self.wait_for_http(f"http://127.0.0.1:{self.web_port}/healthz", ok=(200, 503))
        return self

    def spawn(self, name: str, *args: str) -> None:
        log = open(self.data / f"{name}.log", "wb")
        self.processes[name] = subprocess.Popen(
            [PYTHON, *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_for_http(self, url: str, ok=(200,)) -> None:
        for _ in range(100):
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status in ok:
                        return
            except urllib.error.HTTPError as error:
                if error.code in ok:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{url} did not come up")

    def worker_usage(self) -> tuple[float, float]:
        """CPU seconds of the worker cluster so far, and the largest peak RSS (MB) of its processes."""
        root = self.processes["workers"].pid
        cpu, peak = 0.0, 0.0
        for pid in [root, *children(root)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                status = Path(f"/proc/{pid}/status").read_text()
                peak = max(peak, int(status.split("VmHWM:")[1].split()[0]) / 1024)
            except (FileNotFoundError, IndexError):
                continue
        return cpu, peak

    def simulator_stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.sim_port}/_sim/stats", timeout=30) as answer:
            return json.loads(answer.read())

    def kill_workers(self) -> None:
        os.killpg(self.processes["workers"].pid, signal.SIGKILL)
        self.processes["workers"].wait()

    def __exit__(self, *exc) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        from django.db import connections

        connections.close_all()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *children(int(child))]
    return found


def bench_account(name: str, kind: str, key: str = "sim-key", *, rate_limit: float = 100.0, priority: int = 100):
    from nanoweb.providers.models import ProviderAccount
    from nanoweb.providers.registry import ADAPTERS
    from nanoweb.providers.simulator import base_url_for

    account, _ = ProviderAccount.objects.update_or_create(
        name=name,
        defaults={"kind": kind, "api_key": key, "rate_limit": rate_limit, "priority": priority, "enabled": True,
                  "base_url": base_url_for(os.environ["SIMULATOR_URL"], kind, ADAPTERS[kind].default_base_url)},
    )  # fmt: skip
    return account


def start_jobs(
    count: int, *, model: str, resolution: str, account=None, spread: float = 0, together: bool = False
) -> list[int]:
    """Start `count` jobs through the studio's own service: one by one, evenly over `spread` seconds, or
    `together` in one submission (so that routing places every one before any is sent)."""
    from decimal import Decimal

    from django.contrib.auth import get_user_model

    from nanoweb.credits.models import Budget
    from nanoweb.providers.models import Options
    from nanoweb.studio import pipeline
    from nanoweb.studio.spec import JobSpec

    user, _ = get_user_model().objects.get_or_create(username="bench")
    Budget.objects.update_or_create(user=user, defaults={"amount": Decimal(1_000_000), "period": "none"})
    if together:
        spec = JobSpec(prompt="bench image", model=model, options=Options(resolution=resolution), count=count)
        return [job.pk for job in pipeline.start(owner=user, spec=spec)]
    began, pks = time.monotonic(), []
    for n in range(count):
        if spread:
            time.sleep(max(0.0, began + n * spread / count - time.monotonic()))
        spec = JobSpec(prompt=f"bench image {n % 20}", model=model, options=Options(resolution=resolution),
                       account=account.pk if account else None)  # fmt: skip
        [job] = pipeline.start(owner=user, spec=spec)
        pks.append(job.pk)
    return pks


def submit(
    count: int, *, resolution: str = "1K", kind: str = "crun", rate_limit: float = 100.0, spread: float = 0
) -> list[int]:
    """`count` jobs on one account of this kind, its first model."""
    from nanoweb.providers.registry import ADAPTERS

    account = bench_account(f"bench {kind}", kind, rate_limit=rate_limit)
    model = account.catalogue.get(model_id=ADAPTERS[kind].default_models[0].id).name
    return start_jobs(count, model=model, resolution=resolution, account=account, spread=spread)


def wait_done(pks: list[int], timeout: float) -> list:
    from nanoweb.studio.models import Generation

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Generation.objects.filter(pk__in=pks, status__in=Generation.ACTIVE).exists():
            break
        time.sleep(0.25)
    return list(Generation.objects.filter(pk__in=pks).prefetch_related("images"))


def overhead_figures(stack: Stack, jobs: list) -> dict[str, float]:
    """Provider reports done → job finished with the image stored, per job."""
    completed = stack.simulator_stats()["completed"]
    delays = sorted(
        (job.finished_at - datetime.fromtimestamp(completed[job.provider_task_id], UTC)).total_seconds()
        for job in jobs
        if job.provider_task_id in completed and job.finished_at
    )
    return {"p50": statistics.median(delays), "p95": delays[int(len(delays) * 0.95) - 1]}


def reads_per_job(jobs: list) -> float:
    return statistics.mean(job.poll_count + 1 for job in jobs)  # the last read found it done


def stored_once(jobs: list) -> bool:
    return all(len(job.images.all()) == 1 and job.images.all()[0].thumbnail.name for job in jobs)


# --- scenarios ----------------------------------------------------------------------


def throughput(figures: dict) -> None:
    """1,000 jobs at 1K submitted at once, provider latency 10 s, polling only."""
    with Stack(latency=10) as stack:
        cpu_before, _ = stack.worker_usage()
        started = time.monotonic()
        pks = submit(1000)
        figures["throughput_submit_s"] = round(time.monotonic() - started, 1)
        jobs = wait_done(pks, timeout=300)
        elapsed = max(job.finished_at for job in jobs) - min(job.created_at for job in jobs)
        cpu_after, peak = stack.worker_usage()
        succeeded = [job for job in jobs if job.status == "succeeded"]
        figures["throughput_jobs"] = len(jobs)
        figures["throughput_succeeded"] = len(succeeded)
        figures["throughput_stored_once"] = int(stored_once(succeeded))
        figures["throughput_first_submit_to_last_done_s"] = round(elapsed.total_seconds(), 1)
        figures["throughput_reads_per_job"] = round(reads_per_job(succeeded), 2)
        figures["throughput_max_requests_per_s"] = stack.simulator_stats()["max_requests_per_second"].get("crun", 0)
        figures["throughput_rate_limit"] = 100
        figures["worker_cpu_ms_per_job"] = round((cpu_after - cpu_before) * 1000 / len(jobs), 1)
        figures["throughput_worker_peak_rss_mb"] = round(peak)


def overhead(figures: dict, *, callbacks: bool) -> None:
    """How long after the provider is done is the job done (image stored)? Latency 10 s.

    Steady: 50 jobs in flight, started evenly over one latency (one every 0.2 s).
    Burst: 50 jobs started in the same instant, so that all 50 finish in the same instant.
    """
    name = "callbacks" if callbacks else "polling"
    with Stack(latency=10, callbacks=callbacks) as stack:
        wait_done(submit(5), timeout=60)  # a first round: the account learns its typical duration
        for shape, spread in (("steady", 10.0), ("burst", 0.0)):
            jobs = wait_done(submit(50, spread=spread), timeout=120)
            times = overhead_figures(stack, jobs)
            figures.update({f"{name}_{shape}_overhead_{k}_s": round(v, 3) for k, v in times.items()})
            figures[f"{name}_{shape}_reads_per_job"] = round(reads_per_job(jobs), 2)
            figures[f"{name}_{shape}_succeeded"] = sum(job.status == "succeeded" for job in jobs)


def memory(figures: dict) -> None:
    """Workers storing 4K images: the largest peak RSS of any worker process."""
    with Stack(latency=2) as stack:
        jobs = wait_done(submit(40, resolution="4K"), timeout=180)
        _, peak = stack.worker_usage()
        figures["memory_4k_succeeded"] = sum(job.status == "succeeded" for job in jobs)
        figures["memory_4k_worker_peak_rss_mb"] = round(peak)


def crash(figures: dict) -> None:
    """200 jobs in flight, kill -9 of the whole worker cluster, restart: every job ends once."""
    with Stack(latency=3) as stack:
        from nanoweb.credits import ledger

        pks = submit(100) + submit(100, kind="apiframe")
        time.sleep(2.5)
        stack.kill_workers()
        stack.spawn("workers", "manage.py", "qcluster")
        started = time.monotonic()
        jobs = wait_done(pks, timeout=240)
        figures["crash_jobs"] = len(jobs)
        figures["crash_terminal"] = sum(job.is_terminal for job in jobs)
        figures["crash_succeeded"] = sum(job.status == "succeeded" for job in jobs)
        figures["crash_recovery_s"] = round(time.monotonic() - started, 1)
        figures["crash_ledger_problems"] = len(ledger.check())
        figures["crash_images_stored_once"] = int(stored_once([j for j in jobs if j.status == "succeeded"]))


def failover(figures: dict) -> None:
    """Two accounts serve Nano Banana 2: crun (tried first) refuses every create, and the Gemini
    API (dearer: 0.08 at 1K) serves. 100 jobs for each refusal: 402 (out of credit: crun is paused),
    429 without Retry-After, 455 (maintenance). Then crun answers 500 after taking the request (it
    may have started the job, and crun cannot dedupe): 100 jobs, none may be sent anywhere again."""
    with Stack(latency=2):
        from decimal import Decimal

        from django.db.models import Count

        from nanoweb.credits import ledger
        from nanoweb.credits.models import LedgerEntry
        from nanoweb.providers.models import Attempt, ProviderAccount
        from nanoweb.studio.models import Generation

        gemini = bench_account("bench gemini", "gemini", priority=2)
        gemini.catalogue.filter(name="Nano Banana 2").update(
            prices={"512": "0.05", "1K": "0.08", "2K": "0.1", "4K": "0.15"}
        )
        for code in ("402", "429", "455", "500"):
            ProviderAccount.objects.filter(kind="crun").update(enabled=False)
            crun = bench_account(f"bench crun {code}", "crun", f"sim-key+error={code}", priority=1)
            started = time.monotonic()
            pks = start_jobs(100, model="Nano Banana 2", resolution="1K", together=True)
            jobs = wait_done(pks, timeout=300)
            seconds = round(time.monotonic() - started, 1)
            tried_crun = Attempt.objects.filter(generation__in=pks, account=crun)
            if code == "500":
                sent_to_crun = set(tried_crun.values_list("generation", flat=True))
                again = Attempt.objects.filter(generation__in=sent_to_crun).exclude(pk__in=tried_crun)
                figures["ambiguous_sent_to_crun"] = len(sent_to_crun)
                figures["ambiguous_replayed"] = again.values("generation").distinct().count()
                figures["ambiguous_failed_refunded"] = sum(
                    job.status == "failed" and job.pk in sent_to_crun for job in jobs
                )
                figures["ambiguous_seconds"] = seconds
                continue
            charges = LedgerEntry.objects.filter(generation__in=pks, kind=LedgerEntry.Kind.SETTLE)
            per_job = charges.values("generation").annotate(n=Count("id"))
            once = {row["generation"] for row in per_job if row["n"] == 1}
            at_price = set(charges.filter(amount=Decimal("0.08")).values_list("generation", flat=True))
            figures[f"failover_{code}_jobs"] = len(jobs)
            figures[f"failover_{code}_succeeded_on_second"] = sum(
                job.status == "succeeded" and job.account_id == gemini.pk for job in jobs
            )
            refused = set(tried_crun.filter(outcome="moved").values_list("generation", flat=True))
            figures[f"failover_{code}_refused_by_first"] = len(refused)
            # Jobs queued on the first account after it was paused move on without asking it.
            figures[f"failover_{code}_moved_without_asking"] = len(
                set(pks) - set(tried_crun.values_list("generation", flat=True))
            )
            figures[f"failover_{code}_charged_once_at_serving_price"] = len(once & at_price)
            figures[f"failover_{code}_seconds"] = seconds
            figures[f"failover_{code}_max_job_s"] = round(max(job.duration or 0 for job in jobs), 1)
        figures["failover_ledger_problems"] = len(ledger.check())
        figures["failover_generations_total"] = Generation.objects.count()


SCENARIOS = {
    "throughput": throughput,
    "overhead": lambda figures: overhead(figures, callbacks=False),
    "callbacks": lambda figures: overhead(figures, callbacks=True),
    "memory": memory,
    "crash": crash,
    "failover": failover,
}

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanoweb.settings")
    chosen = sys.argv[1:] or list(SCENARIOS)
    results: dict = {}
    for name in chosen:
        # Each scenario in its own process: Django is set up once per database.
        if len(chosen) > 1:
            output = subprocess.run([PYTHON, __file__, name], capture_output=True, text=True)
            print(output.stdout, output.stderr[-2000:] if output.returncode else "", end="", file=sys.stderr)
            last = output.stdout.strip().splitlines()[-1] if output.stdout.strip() else ""
            results.update(dict(pair.split("=", 1) for pair in last.split()))
        else:
            SCENARIOS[name](results)
    print(" ".join(f"{key}={value}" for key, value in results.items()))
