from __future__ import annotations

from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from nanoweb.boards import items
from nanoweb.boards.forms import BoardForm
from nanoweb.boards.models import Board
from nanoweb.lib import paging, search
from nanoweb.lib.params import id_of, ids_in
from nanoweb.studio import feed, history
from nanoweb.studio.models import Generation
from nanoweb.studio.views import MAX_ZIP, render_feed
from nanoweb.web import Request, back_to, zip_response

MAX_PICKS = 1000
NEW = "new"  # the picker's "New board…"


def visible_board(request: Request, pk: int) -> Board:
    """The board if this user may see it; 404 otherwise (not 403: no existence leak)."""
    return get_object_or_404(Board.visible(request.user).select_related("owner"), pk=pk)


def managed_board(request: Request, pk: int) -> Board:
    """The board if this user may change it (its owner, or staff); 404 otherwise."""
    board = visible_board(request, pk)
    if not board.managed_by(request.user):
        raise Http404
    return board


def picked(request: Request) -> list[Generation]:
    """The results chosen in the request (query or form) that this user may see."""
    ids = ids_in(request.POST.getlist("pick") if request.method == "POST" else request.GET.getlist("pick"))
    return list(Generation.visible(request.user).filter(pk__in=ids[:MAX_PICKS]).order_by("-pk"))


@require_http_methods(["GET", "POST"])
def board_list(request: Request) -> HttpResponse:
    """The boards this user may see (searchable by name), and a form for a new one."""
    form = BoardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.instance.owner = request.user
        board = form.save()
        return redirect(board)
    query = request.GET.get("q", "")
    boards = items.summaries(search.matching(Board.visible(request.user), "name", query), request.user)
    context = {"form": form, "boards": boards, "query": query, "count_limit": items.COUNT_LIMIT}
    return render(request, "boards/list.html", context)


@require_GET
def board_page(request: Request, pk: int) -> HttpResponse:
    board = visible_board(request, pk)
    return show_board(request, board, BoardForm(instance=board))


def show_board(request: Request, board: Board, form: BoardForm, status: int = 200) -> HttpResponse:
    """A board: the gallery's filters, search and paging over what this user sees of it."""
    shown = items.shown(board, request.user)
    context = {
        "board": board,
        "may_manage": board.managed_by(request.user),
        "count": items.count(shown),
        "count_limit": items.COUNT_LIMIT,
        "form": form,
    }
    return render_feed(request, "boards/board.html", context, among=shown, status=status)


@require_POST
def board_edit(request: Request, pk: int) -> HttpResponse:
    board = managed_board(request, pk)
    form = BoardForm(request.POST, instance=board)
    if form.is_valid():
        form.save()
        return redirect(board)
    board.refresh_from_db()  # the page shows the saved name beside the rejected one
    return show_board(request, board, form, status=400)


@require_POST
def board_delete(request: Request, pk: int) -> HttpResponse:
    """The board goes; its results stay where they were."""
    managed_board(request, pk).delete()
    return redirect("board_list")


@require_POST
def board_cover(request: Request, pk: int) -> HttpResponse:
    board = managed_board(request, pk)
    cover = items.shown(board, request.user).filter(pk__in=ids_in(request.POST.getlist("pick"))[:1]).first()
    if cover is None:
        return HttpResponse("Choose a result on this board as its cover.", status=400, content_type="text/plain")
    Board.objects.filter(pk=board.pk).update(cover=cover)
    return back_to(request, board)


@require_GET
def board_download(request: Request, pk: int) -> HttpResponseBase:
    """The board's finished results (as filtered on its page, newest first), with their metadata, as a ZIP."""
    board = visible_board(request, pk)
    chosen: list[Generation] = []
    for group in feed.FeedFilters(request.GET).groups(request.user, items.shown(board, request.user)):
        if len(chosen) >= MAX_ZIP:
            break
        group = group.filter(status=Generation.Status.SUCCEEDED).select_related("owner", "account")
        chosen += paging.newest_first(group).prefetch_related("images")[: MAX_ZIP - len(chosen)]
    if not chosen:
        return HttpResponse("Nothing finished on this board to download.", status=400, content_type="text/plain")
    return zip_response(history.zip_of(chosen), count=len(chosen), name=board.name)


@require_http_methods(["GET", "POST"])
def board_add(request: Request) -> HttpResponse:
    """Put chosen results on a board. GET: choose the board (the page without JavaScript,
    or the form a card opens); POST: put them there."""
    boards = Board.visible(request.user)
    chosen = picked(request)
    if request.method == "GET":
        context = {"picks": chosen, "board_choices": boards, "chosen_board": request.GET.get("board", "")}
        return render(request, "boards/add.html#add_form" if request.htmx else "boards/add.html", context)
    if not chosen:
        return HttpResponse("Choose at least one result.", status=400, content_type="text/plain")
    if request.POST.get("board") == NEW:  # "New board…" in the picker: made here, then filled
        form = BoardForm({"name": request.POST.get("new_board", ""), "private": False})
        if not form.is_valid():
            problem = (
                "Name the new board."
                if not request.POST.get("new_board", "").strip()
                else " ".join(str(error) for error in form.errors["name"])
            )
            if request.htmx:  # said where the status of the picker shows (htmx swaps no error answer)
                return render(request, "boards/add.html#added", {"problem": problem})
            return HttpResponse(problem, status=400, content_type="text/plain")
        form.instance.owner = request.user
        board = form.save()
    else:
        board = get_object_or_404(boards, pk=id_of(request.POST.get("board", "")) or 0)
    added, refused = items.add(board, chosen, by=request.user)
    if request.htmx:
        return render(request, "boards/add.html#added", {"board": board, "added": added, "refused": refused})
    return back_to(request, board)


@require_http_methods(["GET", "POST"])
def board_remove(request: Request, pk: int) -> HttpResponse:
    """Take chosen results off a board. GET: confirm (without JavaScript); POST: take them off."""
    board = visible_board(request, pk)
    chosen = picked(request)
    if request.method == "GET":
        return render(request, "boards/remove.html", {"board": board, "picks": chosen})
    removed = items.remove(board, chosen, by=request.user)
    if request.htmx:
        context = {"board": board, "removed": removed, "kept": len(chosen) - len(removed)}
        return render(request, "boards/remove.html#removed", context)
    return back_to(request, board)
