"""Full-text search: one interface over SQLite's FTS5 and PostgreSQL's text search.

What a person types becomes terms: words, matched in their English forms ("foxes" finds
fox, "running" finds run); `word*` matches what begins with it; words in double quotes match
as a phrase ("at dawn"). Everything else they typed (operators, quotes, brackets, colons)
is dropped, so no input can break the query.

Relevance is how much of the query a text has, in groups, best first:
  1. every term;
  2. every term, the last word read as a beginning ("lighth" while it is still being typed);
  3. some of the terms.
The caller reads each group newest first, which an index serves without visiting every
match: a page costs the same at a thousand matches as at a million. (Scoring each match,
bm25 or ts_rank, costs time in proportion to the matches, and on prompts, which are all
short, mostly rewards the shortest.) Beginnings cost more than whole words (the index
gathers every word that begins so before it can answer), so they only come second.

SQLite: an FTS5 table `<table>_fts` with the model's table as external content, kept in
sync by triggers. A migration that rebuilds the table (as Django does on SQLite for many
schema changes) drops its triggers; `repair_after_migrate` puts them back and reindexes.
The gallery's queries join it and read it in row order, newest first.
PostgreSQL: a stored `<column>_search` tsvector (`to_tsvector('english', column)`, generated
by the database) with a GIN index.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from django.db import connections
from django.db.migrations import RunPython
from django.db.models import BooleanField, Expression, F, QuerySet
from django.db.models.expressions import RawSQL

from nanoweb.lib import paging

CONFIG = "english"  # PostgreSQL's text search configuration
TOKENIZER = "porter unicode61 remove_diacritics 2"  # FTS5's nearest equivalent
MAX_TERMS = 8
WORD = re.compile(r"[^\W_]+")
TERM = re.compile(r'"([^"]*)"?|([^\W_]+)(\*?)')  # a quoted phrase (closed or not), or a word


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]
    prefix: bool = False  # `word*`: what begins with it
    bare: bool = False  # typed as a plain word (so perhaps not finished yet)

    def fts5(self) -> str:
        return '"' + " ".join(self.words) + '"' + ("*" if self.prefix else "")

    def tsquery(self) -> str:
        if len(self.words) > 1:
            return "(" + " <-> ".join(self.words) + ")"
        return self.words[0] + (":*" if self.prefix else "")


def parse(text: str) -> list[Term]:
    """The terms of what a person typed: words and quoted phrases, nothing else."""
    terms: list[Term] = []
    for phrase, word, star in TERM.findall(text):
        words = (word,) if word else tuple(WORD.findall(phrase))
        if words and len(terms) < MAX_TERMS:
            terms.append(Term(tuple(w.lower() for w in words), prefix=bool(star), bare=bool(word and not star)))
    return list(dict.fromkeys(terms))


def _join(terms: list[Term], operator: str, sqlite: bool) -> str:
    """`operator` is AND or OR."""
    if sqlite:
        return "(" + f" {operator} ".join(term.fts5() for term in terms) + ")"
    return "(" + (" & " if operator == "AND" else " | ").join(term.tsquery() for term in terms) + ")"


def _but_not(wanted: str, unwanted: str, sqlite: bool) -> str:
    return f"{wanted} NOT {unwanted}" if sqlite else f"{wanted} & !{unwanted}"


def _groups(terms: list[Term], sqlite: bool) -> list[str]:
    """The queries of the relevance groups, best first, each excluding the ones before it."""
    queries = [_join(terms, "AND", sqlite)]
    widened = _widened(terms)
    if widened != terms:
        queries.append(_but_not(_join(widened, "AND", sqlite), queries[0], sqlite))
    if len(terms) > 1:
        queries.append(_but_not(_join(widened, "OR", sqlite), _join(widened, "AND", sqlite), sqlite))
    return queries


def _widened(terms: list[Term]) -> list[Term]:
    """The last word read as a beginning, if it was typed as a plain word."""
    return [*terms[:-1], replace(terms[-1], prefix=True)] if terms[-1].bare else terms


class TextSearch(Expression):
    """PostgreSQL: true where `column` matches a tsquery, through its stored `<column>_search`."""

    output_field = BooleanField()

    def __init__(self, column: str, query: str):
        super().__init__()
        self.column, self.query = F(column), query

    def get_source_expressions(self):
        return [self.column]

    def set_source_expressions(self, exprs):
        (self.column,) = exprs

    def as_sql(self, compiler, connection):
        alias = compiler.quote_name_unless_alias(self.column.alias)
        searched = f"{alias}.{connection.ops.quote_name(self.column.target.column + '_search')}"
        return f"{searched} @@ to_tsquery('{CONFIG}'::regconfig, %s)", [self.query]


def _matching(queryset: QuerySet, column: str, query: str) -> QuerySet:
    if connections[queryset.db].vendor != "sqlite":
        return queryset.filter(TextSearch(column, query))
    # A join, read in the index's row order (the primary key; unless the listing is read through
    # another index): SQLite then stops at a page's worth instead of first collecting every match.
    meta = queryset.model._meta
    table, fts = meta.db_table, f"{meta.db_table}_fts"
    found = queryset.extra(
        tables=[fts], where=[f'"{fts}".rowid = "{table}"."{meta.pk.column}"', f'"{fts}" MATCH %s'], params=[query]
    )
    return paging.read_by(found, RawSQL(f'"{fts}".rowid', ()))


def ranked(queryset: QuerySet, column: str, text: str) -> list[QuerySet]:
    """The matches of `text` in relevance groups, best first (see above); with no terms, the
    queryset itself. Read each newest first (`paging.newest_first`)."""
    terms = parse(text)
    if not terms:
        return [queryset]
    sqlite = connections[queryset.db].vendor == "sqlite"
    return [_matching(queryset, column, query) for query in _groups(terms, sqlite)]


def matching(queryset: QuerySet, column: str, text: str) -> QuerySet:
    """Rows with every term (the first two groups together): a filter."""
    terms = parse(text)
    if not terms:
        return queryset
    sqlite = connections[queryset.db].vendor == "sqlite"
    return _matching(queryset, column, _join(_widened(terms), "AND", sqlite))


# --- the index: created by a migration, kept in sync by the database --------------


def _sqlite_triggers(table: str, column: str) -> list[str]:
    fts = f"{table}_fts"
    delete = f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});"
    insert = f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});"
    return [
        f"CREATE TRIGGER IF NOT EXISTS {fts}_insert AFTER INSERT ON {table} BEGIN {insert} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_delete AFTER DELETE ON {table} BEGIN {delete} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_update AFTER UPDATE OF {column} ON {table} BEGIN {delete} {insert} END",
    ]


def index_operation(table: str, column: str) -> RunPython:
    """The migration operation that indexes `table.column` (and, reversed, drops the index)."""
    return RunPython(
        lambda apps, schema_editor: create_index(schema_editor, table, column),
        lambda apps, schema_editor: drop_index(schema_editor, table, column),
    )


def create_index(schema_editor, table: str, column: str) -> None:
    """Index `table.column` on whichever database this is."""
    vendor = schema_editor.connection.vendor
    fts = f"{table}_fts"
    if vendor == "sqlite":
        schema_editor.execute(
            # columnsize=0: no per-row lengths, which only bm25 would read.
            f"CREATE VIRTUAL TABLE {fts} USING fts5({column}, content='{table}', content_rowid='id', "
            f"tokenize='{TOKENIZER}', columnsize=0)"
        )
        for sql in _sqlite_triggers(table, column):
            schema_editor.execute(sql)
        schema_editor.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
    elif vendor == "postgresql":
        # Stored: a page of results checks a few hundred rows, and parsing each prompt again
        # would cost more than the rest of the query.
        schema_editor.execute(
            f"ALTER TABLE {table} ADD COLUMN {column}_search tsvector "
            f"GENERATED ALWAYS AS (to_tsvector('{CONFIG}'::regconfig, {column})) STORED"
        )
        schema_editor.execute(f"CREATE INDEX {table}_{column}_search_idx ON {table} USING gin ({column}_search)")
    else:
        raise NotImplementedError(f"full-text search is not implemented for {vendor}")


def drop_index(schema_editor, table: str, column: str) -> None:
    fts = f"{table}_fts"
    if schema_editor.connection.vendor == "sqlite":
        for suffix in ("insert", "delete", "update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
        schema_editor.execute(f"DROP TABLE IF EXISTS {fts}")
    else:
        schema_editor.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {column}_search")  # and its index


@contextlib.contextmanager
def bulk_load(using: str = "default") -> Iterator[None]:
    """Write many rows at once: on SQLite, index them once at the end instead of row by row
    through the triggers (about a hundred times faster)."""
    connection = connections[using]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name GLOB '*_fts_*'")
            for (name,) in cursor.fetchall():
                cursor.execute(f"DROP TRIGGER {name}")
    yield
    repair_after_migrate(using)


def repair_after_migrate(using: str = "default", **kwargs) -> None:
    """SQLite only: put back the triggers a table rebuild dropped, and reindex that table."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'trigger')")
        rows = cursor.fetchall()
        triggers = {name for kind, name, _ in rows if kind == "trigger"}
        for _, fts, sql in rows:
            if not (fts.endswith("_fts") and (sql or "").upper().startswith("CREATE VIRTUAL TABLE")):
                continue
            if {f"{fts}_insert", f"{fts}_delete", f"{fts}_update"} <= triggers:
                continue
            cursor.execute(f"PRAGMA table_info({fts})")
            column = cursor.fetchone()[1]
            for statement in _sqlite_triggers(fts.removesuffix("_fts"), column):
                cursor.execute(statement)
            cursor.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
