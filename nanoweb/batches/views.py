"""The Batch page (a list of prompts, checked and priced before it runs) and a batch's own page."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from nanoweb.batches import rows as batch_rows
from nanoweb.batches import service
from nanoweb.batches.forms import BatchForm
from nanoweb.batches.models import Batch
from nanoweb.credits import ledger
from nanoweb.studio import feed, history
from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation
from nanoweb.web import Request, zip_response

SHOWN_RESULTS = 100  # a batch page's cards; the ZIP and the board hold them all


def visible_batch(request: Request, pk: int) -> Batch:
    """A batch its owner (or staff) may see; 404 for anyone else."""
    batch = get_object_or_404(Batch.objects.select_related("board"), pk=pk)
    if batch.owner_id != request.user.pk and not request.user.is_staff:
        raise Http404
    return batch


def read_rows(form: BatchForm) -> tuple[list[batch_rows.Row], str, str]:
    """The submission's rows, and its text and mode for the page to send back."""
    data = form.cleaned_data
    if data.get("file") is not None:
        text, mode = batch_rows.decode(data["file"].read()), "csv"
    elif data.get("prompts", "").strip():
        text, mode = data["prompts"], "lines"
    else:
        text, mode = data["source"], data.get("mode") or "lines"
    rows = batch_rows.from_csv(text) if mode == "csv" else batch_rows.from_lines(text)
    return rows, text, mode


@require_http_methods(["GET", "POST"])
def new_batch(request: Request) -> HttpResponse:
    """GET: the form and the person's batches. POST: the preview (every row as it will be made,
    with its errors, the total and what the budget leaves); with `run`, start it."""
    context: dict[str, Any] = {"batches": Batch.objects.filter(owner=request.user)[:20]}
    if request.method == "GET":
        return render(request, "batches/new.html", {**context, "form": BatchForm(user=request.user)})
    form = BatchForm(request.POST, request.FILES, user=request.user)
    if not form.is_valid():
        return render(request, "batches/new.html", {**context, "form": form}, status=400)
    try:
        rows, text, mode = read_rows(form)
    except batch_rows.Unreadable as exc:
        form.add_error("file" if form.cleaned_data.get("file") else None, str(exc))
        return render(request, "batches/new.html", {**context, "form": form}, status=400)
    data = form.cleaned_data
    defaults = batch_rows.Defaults(data["model"], data["aspect_ratio"], data["resolution"], data["output_format"])
    cheaper = data["cheaper"]
    refusal = ""
    if "run" in request.POST:
        try:
            batch = service.create_batch(
                owner=request.user, rows=rows, defaults=defaults, board=data["board"], cheaper=cheaper
            )
        except service.Refused as exc:
            refusal = str(exc)
        except (ledger.OverBudget, pipeline.NoAccount) as exc:
            refusal = str(exc)
        else:
            return redirect(batch)
        rows = [batch_rows.Row(row.line, row.values) for row in rows]  # checked again below, from the start
    checked = batch_rows.check(request.user, rows, defaults, cheaper=cheaper)
    bad = [row for row in checked if row.errors]
    total = service.total(checked)
    left = ledger.available(request.user)
    if not refusal and total > left:
        refusal = (
            f"These {sum(row.images for row in checked)} images cost {ledger.money(total)}, but you have "
            f"{ledger.money(left)} left: nothing will run. Remove rows or ask an admin for a larger budget."
        )
    preview = {
        "rows": checked, "bad": bad, "total": total, "left": left, "after": left - total, "refusal": refusal,
        "runnable": not bad and not refusal, "source": text, "mode": mode,
        "images": sum(row.images for row in checked),
    }  # fmt: skip
    status = 200 if preview["runnable"] else 400
    return render(request, "batches/new.html", {**context, "form": form, "preview": preview}, status=status)


def batch_context(request: Request, batch: Batch) -> dict[str, Any]:
    return {"batch": batch, "progress": service.progress(batch), "priced": service.cost_total(batch)}


@require_GET
def batch_detail(request: Request, pk: int) -> HttpResponse:
    batch = visible_batch(request, pk)
    jobs = list(
        Generation.objects.filter(batch_item__batch=batch, deleted_at__isnull=True)
        .select_related("account")
        .order_by("batch_item__line", "pk")[:SHOWN_RESULTS]
    )
    feed.decorate(jobs, request.user)
    return render(request, "batches/batch.html", {**batch_context(request, batch), "jobs": jobs})


@require_GET
@never_cache
def batch_progress(request: Request, pk: int) -> HttpResponse:
    """The progress line, for the page to poll; 286 (htmx: stop polling) once nothing waits or runs."""
    context = batch_context(request, visible_batch(request, pk))
    response = render(request, "batches/batch.html#progress", context)
    if context["progress"].finished:
        response.status_code = 286
    return response


@require_POST
def cancel_batch(request: Request, pk: int) -> HttpResponse:
    batch = visible_batch(request, pk)  # its owner or staff, as a job's cancel
    service.cancel(batch)
    return redirect(batch)


@require_GET
def batch_zip(request: Request, pk: int) -> HttpResponse | FileResponse:
    batch = visible_batch(request, pk)
    done = list(
        Generation.objects.filter(batch_item__batch=batch, status=Generation.Status.SUCCEEDED, deleted_at__isnull=True)
        .select_related("owner", "account")
        .prefetch_related("images")
        .order_by("batch_item__line", "pk")
    )
    if not done:
        return render(request, "studio/zip_empty.html", status=400)
    return zip_response(history.zip_of(done), count=len(done), name=f"batch-{batch.pk}")
