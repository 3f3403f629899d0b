"""Reading a listing newest first through the index that suits it, so that a page costs the
same at ten thousand rows as at a million.

A queryset may carry a `position` annotation: the indexed column to read it by (a board's
items by the board's index, a search by its full-text index, a person's ratings by theirs).
Its value is always the generation's id, so a cursor is the same whatever the index.
Without one, it is read by primary key.
"""

from __future__ import annotations

from django.db.models import Expression, F, QuerySet

POSITION = "position"


def read_by(queryset: QuerySet, expression: Expression | F) -> QuerySet:
    """Read `queryset` through `expression`'s index, unless an index was chosen already."""
    if POSITION in queryset.query.annotations:
        return queryset
    return queryset.annotate(**{POSITION: expression})


def newest_first(queryset: QuerySet) -> QuerySet:
    return queryset.order_by(f"-{_key(queryset)}")


def older_than(queryset: QuerySet, pk: int) -> QuerySet:
    return queryset.filter(**{f"{_key(queryset)}__lt": pk})


def _key(queryset: QuerySet) -> str:
    return POSITION if POSITION in queryset.query.annotations else "pk"
