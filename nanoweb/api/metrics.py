"""/metrics for Prometheus: figures read from the database at each scrape (cached briefly), so
that what every web and worker process did is counted once, without a multi-process registry.

Counters are totals over every job there is (rows are never removed: a deleted job keeps its row),
so Prometheus' rate() and histogram_quantile() work on them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from nanoweb.api.auth import RATE_LIMITED_COUNTER
from nanoweb.api.models import WebhookDelivery
from nanoweb.credits.models import LedgerEntry
from nanoweb.providers.base import ErrorKind
from nanoweb.providers.models import Attempt
from nanoweb.studio import health
from nanoweb.studio.models import Generation

CACHE_KEY = "metrics-page"
CACHE_SECONDS = 5  # scrapes by several Prometheus servers share one set of queries
BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)


class StudioCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from jobs()
        yield time_to_result()
        yield from reads_and_waits()
        yield ledger_totals()
        yield from queues()


def jobs() -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        "nanoweb_jobs", "Jobs by state, provider account and model", labels=["state", "provider", "model"]
    )
    rows = Generation.objects.order_by().values_list("status", "account__name", "model_name").annotate(n=Count("pk"))
    for status, provider, model, count in rows:
        by_state.add_metric([status, provider, model], count)
    yield by_state


def time_to_result() -> Metric:
    """Seconds from the job's creation to its stored result, for every succeeded job."""
    took = ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField())
    done = Generation.objects.filter(status=Generation.Status.SUCCEEDED, finished_at__isnull=False).annotate(took=took)
    figures = done.order_by().aggregate(
        total=Sum("took"), count=Count("pk"),
        **{f"le{b}": Count("pk", filter=Q(took__lte=timedelta(seconds=b))) for b in BUCKETS},
    )  # fmt: skip
    buckets = [(str(float(b)), figures[f"le{b}"]) for b in BUCKETS] + [("+Inf", figures["count"])]
    total = figures["total"].total_seconds() if figures["total"] else 0.0
    return HistogramMetricFamily(
        "nanoweb_time_to_result_seconds",
        "From creation to the stored result, succeeded jobs",
        buckets=buckets,
        sum_value=total,
    )


def reads_and_waits() -> Iterator[Metric]:
    reads = CounterMetricFamily("nanoweb_provider_reads", "Status reads of ended jobs", labels=["provider"])
    ended = CounterMetricFamily("nanoweb_jobs_ended", "Jobs ended (succeeded, failed or canceled)", labels=["provider"])
    rows = (
        Generation.objects.filter(status__in=Generation.TERMINAL).order_by().values_list("account__name")
        .annotate(reads=Sum("poll_count"), n=Count("pk"))
    )  # fmt: skip
    for provider, read_count, count in rows:
        reads.add_metric([provider], read_count or 0)
        ended.add_metric([provider], count)
    yield reads
    yield ended
    limited = CounterMetricFamily(
        "nanoweb_provider_rate_limited", "Creates a provider refused as rate-limited (the job waited and tried again)",
        labels=["provider"],
    )  # fmt: skip
    refused = Attempt.objects.filter(error_kind=ErrorKind.RATE_LIMITED).order_by().values_list("account__name")
    for provider, count in refused.annotate(n=Count("pk")):
        limited.add_metric([provider], count)
    yield limited
    api_limited = CounterMetricFamily("nanoweb_api_rate_limited", "API requests refused with 429 (per-token limit)")
    api_limited.add_metric([], cache.get(RATE_LIMITED_COUNTER, 0))
    yield api_limited


def ledger_totals() -> Metric:
    totals = CounterMetricFamily("nanoweb_ledger", "Ledger totals by kind of line, in the team's unit", labels=["kind"])
    for kind, amount in LedgerEntry.objects.order_by().values_list("kind").annotate(total=Sum("amount")):
        totals.add_metric([kind], float(amount or 0))
    return totals


def queues() -> Iterator[Metric]:
    tasks = GaugeMetricFamily("nanoweb_task_queue_depth", "Tasks waiting in the django-q broker")
    broker = health.broker()
    tasks.add_metric([], broker.get("queued") or 0)
    yield tasks
    due = GaugeMetricFamily("nanoweb_jobs_due", "Unfinished jobs whose next step is due now (submit, read, finish)")
    due.add_metric([], Generation.objects.filter(status__in=Generation.DUE_STATES, due_at__lte=timezone.now()).count())
    yield due
    webhooks = GaugeMetricFamily("nanoweb_webhook_deliveries_waiting", "Webhook deliveries not yet accepted")
    webhooks.add_metric([], WebhookDelivery.objects.filter(next_attempt_at__isnull=False).count())
    yield webhooks


def page() -> bytes:
    cached = cache.get(CACHE_KEY)
    if cached is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StudioCollector())
        cached = generate_latest(registry)
        cache.set(CACHE_KEY, cached, CACHE_SECONDS)
    return cached
