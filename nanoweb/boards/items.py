"""What is on a board as each person sees it, and putting results on it or taking them off.

Whatever its owner or anyone added, a person sees of a board only what the one rule,
`Generation.visible`, lets them see: in the page, the counts, the cover and the ZIP.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db.models import Exists, F, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from nanoweb.boards.models import Board, BoardItem
from nanoweb.lib import paging
from nanoweb.studio.models import GeneratedImage, Generation

COUNT_LIMIT = 1000  # boards count this far ("1000+"): counting costs a lookup per item


def shown(board: Board, user) -> QuerySet[Generation]:
    """The board's items this user may see, with who added each (`added_by_id`), read through
    the board's own index (`position`: the item's generation) rather than every generation."""
    # The annotations reuse the filter's join: one row per item.
    items = (
        Generation.visible(user).filter(board_entries__board=board).annotate(added_by_id=F("board_entries__added_by"))
    )
    return paging.read_by(items, F("board_entries__generation"))


def count(shown_items: QuerySet[Generation]) -> int:
    """How many (up to COUNT_LIMIT), read in the board's order so that it stops there."""
    return paging.newest_first(shown_items)[:COUNT_LIMIT].count()


def may_add(board: Board, user, generation: Generation) -> bool:
    """Owner and staff curate; teammates contribute their own results, not other people's."""
    return board.managed_by(user) or generation.owner_id == user.pk


def may_remove(board: Board, user, added_by_id: int) -> bool:
    """Owner and staff take anything off; teammates take off what they added."""
    return board.managed_by(user) or added_by_id == user.pk


def holding(generation: Generation, user) -> list[tuple[Board, bool]]:
    """The boards this user sees with this result on them, by name, and whether they may take it off each."""
    entries = BoardItem.objects.filter(board__in=Board.visible(user), generation=generation).select_related("board")
    return [
        (entry.board, may_remove(entry.board, user, entry.added_by_id)) for entry in entries.order_by("board__name")
    ]


def add(board: Board, picks: Iterable[Generation], *, by) -> tuple[list[Generation], list[Generation]]:
    """Put on the board what `by` may put there (already there: no change). Returns what
    was accepted and what was refused."""
    picks = list(picks)
    accepted = [generation for generation in picks if may_add(board, by, generation)]
    BoardItem.objects.bulk_create(
        [BoardItem(board=board, generation=generation, added_by=by) for generation in accepted], ignore_conflicts=True
    )
    return accepted, [generation for generation in picks if generation not in accepted]


def remove(board: Board, picks: Iterable[Generation], *, by) -> list[int]:
    """Take off the board what `by` may take off: anything for its owner and staff, what
    they added themselves for others. Returns the generation ids taken off."""
    entries = BoardItem.objects.filter(board=board, generation__in=list(picks))
    if not board.managed_by(by):
        entries = entries.filter(added_by=by)
    removed = list(entries.values_list("generation_id", flat=True))
    entries.delete()
    if board.cover_id in removed:
        Board.objects.filter(pk=board.pk).update(cover=None)
    return removed


class SubqueryCount(Subquery):
    template = "(SELECT count(*) FROM (%(subquery)s) _counted)"
    output_field = IntegerField()


def summaries(boards: QuerySet[Board], user) -> Sequence[Board]:
    """Boards with what this user sees of them: `count` and `cover_image` (their owner's
    choice if this user may see it, else the newest item they may see), in three queries."""
    items = Generation.visible(user).filter(board_entries__board=OuterRef("pk"))
    listed = list(
        boards.select_related("owner").annotate(
            count=Coalesce(SubqueryCount(items.order_by().values("pk")[:COUNT_LIMIT]), 0),
            newest=Subquery(items.order_by("-pk").values("pk")[:1]),
            cover_shown=Exists(items.filter(pk=OuterRef("cover_id"))),
        )
    )
    covers: dict[int, int | None] = {
        board.pk: board.cover_id if board.cover_shown else board.newest for board in listed
    }
    images = {
        image.generation_id: image
        for image in GeneratedImage.objects.filter(generation_id__in=[pk for pk in covers.values() if pk], index=0)
    }
    for board in listed:
        cover = covers[board.pk]
        board.cover_image = images.get(cover) if cover else None
    return listed
