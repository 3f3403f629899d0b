"""Gallery benchmark: the feed, a filtered feed, a board page and a two-word search at 10,000
and at 1,000,000 generations.

    .venv/bin/python bench/gallery.py [rows]                         # SQLite; default 1000000
    .venv/bin/python -m tests.services postgres -- .venv/bin/python bench/gallery.py [rows]

Seeds a fresh database (a temporary SQLite file, or the PostgreSQL of DATABASE_URL) with bulk
SQL: 20 people, 5 accounts, one image per succeeded job, 10% private, a shared board holding
1% of the generations (added by their makers, private ones included), and one person's
ratings of 1%. Then times each page in-process through Django's test client, with DEBUG off
as in production (server time, no network; and this process's CPU time, which a busy shared
machine inflates less; on PostgreSQL it leaves out the server's own), and counts its queries
at two page sizes and both database sizes. The figures come last, as one line of name=value
pairs.
"""

from __future__ import annotations

import itertools
import os
import random
import secrets
import shutil
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
BATCH = 20_000


VARYING = [
    "uuid", "callback_token", "owner_id", "prompt", "account_id", "model", "model_name", "status", "private",
    "created_at",
]  # fmt: skip


def generation_rows(start: int, count: int, people: list[int], accounts: dict[int, list[tuple[str, str]]], vendor: str):
    """Rows of the VARYING columns, already as the database stores them (every other column
    gets the model's default). Built without the ORM: a million model objects take minutes."""
    from django.utils import timezone

    rng = random.Random(start)
    account_ids = list(accounts)
    first = (timezone.now() - timedelta(minutes=2_000_000)).replace(tzinfo=None)  # UTC
    zone = "+00:00" if vendor == "postgresql" else ""
    statuses = ["succeeded"] * 90 + ["failed"] * 8 + ["canceled"] * 2
    for n in range(start, start + count):
        account = account_ids[n % len(account_ids)]
        yield (
            f"{rng.getrandbits(128):032x}",
            f"bench-{n}",
            people[rng.randrange(len(people))],
            " ".join(rng.choices(WORDS, k=rng.randint(4, 14))),
            account,
            *accounts[account][n % len(accounts[account])],  # the model's id and catalogue name
            statuses[rng.randrange(100)],
            rng.random() < 0.1,
            f"{first + timedelta(minutes=n):%Y-%m-%d %H:%M:%S.%f}{zone}",  # a minute apart, in the order of their ids
        )


def defaults(model, given: list[str]) -> tuple[list[str], tuple]:
    """The columns of `model` other than its primary key and `given`, and the value each
    gets: its field's default as the database stores it. A NOT NULL column without a default
    is an error here, so a new required column fails loudly instead of seeding wrong rows."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if not f.primary_key and f.column not in given]
    missing = [f.column for f in fields if not (f.has_default() or f.null or f.empty_strings_allowed)]
    if missing:
        raise ValueError(f"{model._meta.db_table}: give {', '.join(missing)} (NOT NULL, no default)")
    return [f.column for f in fields], tuple(f.get_db_prep_save(f.get_default(), connection) for f in fields)


def insert(model, rows, varying: list[str]) -> None:
    """Bulk-insert tuples of the `varying` columns: COPY on PostgreSQL, executemany on SQLite."""
    from django.db import connection

    columns, constant = defaults(model, varying)
    names = ", ".join(connection.ops.quote_name(column) for column in varying + columns)
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row + constant)
            return
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * (len(varying) + len(columns)))})"
        while batch := [row + constant for row in itertools.islice(rows, BATCH)]:
            cursor.executemany(sql, batch)


def insert_select(model, select: dict[str, str], where: str, params: list) -> None:
    """INSERT INTO model's table ... SELECT, one row per generation matching `where`: the
    columns of `select` from SQL expressions over studio_generation, every other column its default."""
    from django.db import connection

    columns, constant = defaults(model, list(select))
    names = ", ".join(connection.ops.quote_name(column) for column in [*select, *columns])
    expressions = ", ".join([*select.values(), *["%s"] * len(columns)])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({names}) SELECT {expressions} FROM studio_generation WHERE {where}",
            [*constant, *params],
        )


def seed(rows: int) -> None:
    """Add `rows` generations (older than those already there), with their images, board items and ratings."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from nanoweb.boards.models import Board, BoardItem
    from nanoweb.lib import search
    from nanoweb.providers.models import ProviderAccount
    from nanoweb.studio.models import GeneratedImage, Generation, Rating

    people = [get_user_model().objects.get_or_create(username=f"person{n}")[0].pk for n in range(20)]
    accounts = {
        account.pk: list(account.catalogue.values_list("model_id", "name"))
        for account in (
            ProviderAccount.objects.get_or_create(
                name=f"{kind} bench", defaults={"kind": kind, "base_url": "https://example.invalid", "api_key": "k"}
            )[0]
            for kind in ("crun", "nanophoto", "apiframe", "defapi", "gemini")
        )
    }
    board = Board.objects.get_or_create(name="Spring campaign", defaults={"owner_id": people[0]})[0]
    first_new = (Generation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    already = Generation.objects.count()
    with transaction.atomic(), search.bulk_load():
        insert(Generation, generation_rows(already, rows, people, accounts, connection.vendor), VARYING)
        insert_select(
            GeneratedImage,
            {
                "generation_id": "id", "index": "0", "original": "'o/' || id || '.png'",
                "thumbnail": "'t/' || id || '.webp'", "display": "'d/' || id || '.webp'", "width": "1024",
                "height": "1024", "bytes": "1", "sha256": f"'{'0' * 64}'", "mime_type": "'image/png'",
                "created_at": "created_at",
            },
            "status = 'succeeded' AND id >= %s",
            [first_new],
        )  # fmt: skip
        insert_select(  # 1% on the board, added by their makers (so private ones are there too)
            BoardItem,
            {"board_id": str(board.pk), "generation_id": "id", "added_by_id": "owner_id", "added_at": "created_at"},
            "id %% 100 = 0 AND id >= %s",
            [first_new],
        )
        insert_select(  # person1 rated 1%
            Rating,
            {"user_id": str(people[1]), "generation_id": "id", "stars": "id %% 5 + 1", "rated_at": "created_at"},
            "id %% 97 = 0 AND id >= %s",
            [first_new],
        )
    with connection.cursor() as cursor:  # fresh planner statistics, as autovacuum would give a live database
        cursor.execute("ANALYZE")


def measure(client, url: str, params: dict, repeats: int = 25) -> tuple[float, float, int]:
    """Median server time and median CPU time of this process (ms; on a shared machine the
    second shows what waiting for a core hides), and the number of queries of one request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url, params, secure=True)  # warm caches; HTTPS, as behind the proxy
    times, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url, params, secure=True)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params, secure=True)
    assert "<article" in response.text, (url, params)  # the page has results
    return statistics.median(times), statistics.median(cpu), len(queries.captured_queries)


def main(rows: int, small: int = 10_000) -> None:
    data = Path(tempfile.mkdtemp(prefix="nanoweb-gallery-"))
    # As in production: DEBUG off (no query log, no template debug data, hashed static files).
    os.environ.update({"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "NANOWEB_DATA_DIR": str(data),
                       "STATIC_ROOT": str(data / "static"), "LOG_LEVEL": "WARNING"})  # fmt: skip
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanoweb.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from nanoweb.boards.models import Board
    from nanoweb.studio import feed
    from nanoweb.studio.models import Generation

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    figures: dict[str, object] = {"database": connection.vendor}
    client = Client()
    for size in dict.fromkeys((small, rows)):  # once if they are the same
        started = time.monotonic()
        seed(size - Generation.objects.count())
        figures[f"seed_{size}_s"] = round(time.monotonic() - started, 1)
        client.force_login(get_user_model().objects.get(username="person1"))
        board = f"/boards/{Board.objects.get().pk}"
        pages = {
            "feed": ("/gallery", {}),
            "filtered": ("/gallery", {"person": "person3", "view": "team"}),  # finished images: the default
            "board": (board, {}),
            "search": ("/gallery", {"q": "lighthouse dawn"}),
        }
        for name, (url, params) in pages.items():
            for page_size in (30, 60):
                feed.PAGE_SIZE = page_size
                ms, cpu_ms, queries = measure(client, url, params)
                if page_size == 30:
                    figures[f"{name}_{size}_median_ms"] = round(ms, 1)
                    figures[f"{name}_{size}_cpu_ms"] = round(cpu_ms, 1)
                figures[f"{name}_{size}_queries_page{page_size}"] = queries
            feed.PAGE_SIZE = 30
    shutil.rmtree(data)
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
