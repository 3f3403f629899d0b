"""Gallery benchmark: the feed, a filtered feed and a prompt search over 100,000 generations.

    .venv/bin/python bench/gallery.py [rows]      # default 100000; about a minute

Seeds a fresh SQLite database in a temporary folder (20 people, 5 accounts, one image per
succeeded job), then times each view in-process through Django's test client (server time,
no network) and counts its queries at two page sizes and two database sizes. The figures
come last, as one line of name=value pairs.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "red blue green golden misty quiet stormy neon ancient tiny giant wooden glass paper "
    "fox bear lighthouse harbour city forest desert garden kite door river mountain robot cat "
    "at dawn at night in the rain under snow by the sea on mars in a basket with lanterns"
).split()


def seed(rows: int) -> None:
    """Add `rows` generations (older than those already there), one image per succeeded job."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from nanoweb.providers.models import ProviderAccount
    from nanoweb.studio.models import GeneratedImage, Generation

    rng = random.Random(rows)
    people = [get_user_model().objects.get_or_create(username=f"person{n}")[0] for n in range(20)]
    accounts = [
        ProviderAccount.objects.get_or_create(
            name=f"{kind} bench", defaults={"kind": kind, "base_url": "https://example.invalid", "api_key": "k"}
        )[0]
        for kind in ("crun", "nanophoto", "apiframe", "defapi", "gemini")
    ]
    first_new = (Generation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    models = {a.pk: [m.id for m in a.adapter_class.models] for a in accounts}
    now = timezone.now()
    batch = []
    for n in range(rows):
        account = rng.choice(accounts)
        batch.append(
            Generation(
                owner=rng.choice(people),
                prompt=" ".join(rng.choices(WORDS, k=rng.randint(4, 14))),
                account=account,
                model=rng.choice(models[account.pk]),
                status=rng.choices(["succeeded", "failed", "canceled"], weights=[90, 8, 2])[0],
                private=rng.random() < 0.1,
                created_at=now - timedelta(days=1, minutes=rows - n),
            )
        )
        if len(batch) == 5000:
            Generation.objects.bulk_create(batch)
            batch = []
    Generation.objects.bulk_create(batch)
    images = [
        GeneratedImage(
            generation_id=pk,
            width=1024,
            height=1024,
            bytes=1,
            sha256="0" * 64,
            mime_type="image/png",
            original=f"o/{pk}.png",
            thumbnail=f"t/{pk}.webp",
        )  # fmt: skip
        for pk in Generation.objects.filter(status="succeeded", pk__gte=first_new).values_list("pk", flat=True)
    ]
    GeneratedImage.objects.bulk_create(images, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cursor:  # fresh planner statistics, as autovacuum would give a live database
        cursor.execute("ANALYZE")


def measure(client, url: str, params: dict, repeats: int = 25) -> tuple[float, int]:
    """Median server time (ms) and the number of queries of one request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url, params)  # warm caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url, params)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get(url, params)
    return statistics.median(times), len(queries.captured_queries)


def main(rows: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="nanoweb-gallery-"))
    os.environ.update({"DEBUG": "1", "NANOWEB_DATA_DIR": str(data), "LOG_LEVEL": "WARNING"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanoweb.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from nanoweb.studio import feed

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    figures: dict[str, object] = {}
    client = Client()
    views = {
        "feed": {},
        "filtered": {"person": "person3", "status": "succeeded", "view": "team"},
        "search": {"q": "lighthouse dawn"},
    }
    for size in (rows // 10, rows):
        from nanoweb.studio.models import Generation

        started = time.monotonic()
        seed(size - Generation.objects.count())
        figures[f"seed_{size}_s"] = round(time.monotonic() - started, 1)
        from django.contrib.auth import get_user_model

        client.force_login(get_user_model().objects.get(username="person1"))
        for name, params in views.items():
            for page_size in (30, 60):
                feed.PAGE_SIZE = page_size
                ms, queries = measure(client, "/gallery", params)
                if page_size == 30:
                    figures[f"{name}_{size}_median_ms"] = round(ms, 1)
                figures[f"{name}_{size}_queries_page{page_size}"] = queries
            feed.PAGE_SIZE = 30
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
