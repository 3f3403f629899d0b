from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import get_conditional_response
from django.utils.http import quote_etag
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from nanoweb.credits import ledger
from nanoweb.lib.params import id_of, ids_in
from nanoweb.studio import feed, history, references
from nanoweb.studio.forms import AUTOMATIC, GenerationForm, NotStarted, SavedPromptForm, start_comparison
from nanoweb.studio.jobs import pipeline, spec
from nanoweb.studio.models import Action, GeneratedImage, Generation, Rating, SavedPrompt
from nanoweb.web import Request, back_to, zip_response

RECENT_JOBS = 24
MAX_WATCHED = 100  # jobs one page may watch through its live channel


def visible_generation(request: Request, pk: int) -> Generation:
    """The generation if this user may see it; 404 otherwise (not 403: no existence leak)."""
    generation = get_object_or_404(Generation.objects.select_related("account", "owner"), pk=pk)
    if not generation.visible_to(request.user):
        raise Http404
    return generation


def generation_for(request: Request, pk: int, action: Action) -> Generation:
    """The generation if this user may do `action` with it (`Generation.allowed`); 404 otherwise."""
    generation = visible_generation(request, pk)
    if not generation.allowed(request.user)[action]:
        raise Http404
    return generation


def visible_image(request: Request, pk: int) -> GeneratedImage:
    image = get_object_or_404(GeneratedImage.objects.select_related("generation"), pk=pk)
    if not image.generation.visible_to(request.user):
        raise Http404
    return image


def recent_jobs(request: Request) -> list[Generation]:
    # A batch's rows live on the batch's page: a list of 500 would push the studio's own work away.
    mine = Generation.objects.filter(owner=request.user, deleted_at__isnull=True, lane="").select_related("account")
    jobs = list(mine[:RECENT_JOBS])
    feed.decorate(jobs, request.user)
    return jobs


@dataclass
class JobSet:
    """Variations made by one submission, shown as one card with one status and "Cancel all"."""

    jobs: list[Generation]

    @property
    def group(self) -> Any:
        return self.jobs[0].group

    @property
    def first(self) -> Generation:
        return self.jobs[0]

    @property
    def compared(self) -> bool:
        """One prompt on several models (side by side): each tile says its model, cost and time."""
        return len({job.model_name for job in self.jobs}) > 1

    @property
    def running(self) -> int:
        return sum(not job.is_terminal for job in self.jobs)

    @property
    def failed(self) -> int:
        return sum(job.status in {Generation.Status.FAILED, Generation.Status.CANCELED} for job in self.jobs)

    @property
    def status(self) -> str:
        if self.running:
            return "running"
        return "failed" if self.failed == len(self.jobs) else "succeeded"

    @property
    def status_line(self) -> str:
        count = len(self.jobs)
        done = count - self.running - self.failed
        if self.running:
            return f"Generating: {done} of {count} done"
        if self.failed:
            return f"{done} of {count} made; {self.failed} failed or canceled, not charged"
        return f"All {count} made"


def sets_of(jobs: Iterable[Generation]) -> list[Generation | JobSet]:
    """The jobs in order, those of one submission (one `group`) together as a set."""
    entries: list[Generation | JobSet] = []
    sets: dict[Any, JobSet] = {}
    for job in jobs:
        if job.group is None:
            entries.append(job)
        elif job.group in sets:
            sets[job.group].jobs.append(job)
        else:
            sets[job.group] = JobSet([job])
            entries.append(sets[job.group])
    for each in sets.values():
        each.jobs.sort(key=lambda job: job.pk)  # in the order made, as the live channel renders them
    return [entry.jobs[0] if isinstance(entry, JobSet) and len(entry.jobs) == 1 else entry for entry in entries]


def set_of(generation: Generation) -> JobSet:
    """The set a grouped job belongs to, as its owner sees it."""
    members = Generation.objects.filter(owner=generation.owner_id, group=generation.group, deleted_at__isnull=True)
    return JobSet(list(members.select_related("account").prefetch_related("images").order_by("pk")))


def card(request: Request, generation: Generation, *, oob: bool = False) -> str:
    """A job's card, or its set's card when it was made with variations."""
    if generation.group is not None and generation.owner_id == request.user.pk:
        variations = set_of(generation)
        feed.decorate(variations.jobs, request.user)
        return render_to_string("studio/card.html#set", {"set": variations, "oob": oob}, request)
    feed.decorate([generation], request.user)
    return render_to_string("studio/card.html#card", {"job": generation, "oob": oob}, request)


def last_choices(request: Request) -> dict:
    """Start the form where this user left it: same model and options, routed automatically
    (a pinned account is chosen again each time, never carried over silently)."""
    last = Generation.objects.filter(owner=request.user).order_by("-created_at").first()
    return {**choices_of(last), "routing": AUTOMATIC} if last else {}


def form_context(request: Request, form: GenerationForm, **extra) -> dict:
    """The form, what the person stands at, and whether what is chosen costs more than they have
    (Generate is then disabled, with the reason beside it)."""
    available = ledger.available(request.user)
    price = form.price
    return {
        "form": form,
        "standing": ledger.standing(request.user),
        "available": available,
        "short": price is not None and price > available,
        **extra,
    }


def choices_of(generation: Generation) -> dict:
    """The form's values that made this generation: its model, routing and options."""
    return {
        "model": generation.model_name,
        "routing": AUTOMATIC if generation.automatic else str(generation.account_id),
        "aspect_ratio": generation.aspect_ratio,
        "resolution": generation.resolution,
        "output_format": generation.output_format,
        "google_search": generation.google_search,
    }


def as_references(request: Request, source: Generation) -> dict:
    """The form's reference fields for the references of `source` this user may see."""
    shown = [ref for _, ref in references.shown_to(request.user, source) if not ref.deleted]
    return {
        "reference_results": [ref.result_id for ref in shown if ref.result_id],
        "reused_references": [ref.pk for ref in shown if not ref.result_id],
    }


@require_GET
def studio(request: Request) -> HttpResponse:
    initial = last_choices(request)
    focus = False
    if "from" in request.GET:  # "Use this prompt": every parameter of that generation, and its references
        source = visible_generation(request, id_of(request.GET["from"]) or 0)
        initial = {**choices_of(source), **as_references(request, source), "prompt": source.prompt}
        focus = True
    if "prompt" in request.GET:  # a preset from the prompt library: its prompt, model and options
        saved = get_object_or_404(SavedPrompt.visible(request.user), pk=id_of(request.GET["prompt"]) or 0)
        initial = {**initial, **saved.choices, "prompt": saved.prompt}
    if id_of(request.GET.get("board", "")):  # "Make images for this board"
        initial["board"] = request.GET["board"]
    if "pick" in request.GET:  # "Edit this image" / "Edit selected": those results as references
        picked = Generation.visible(request.user).filter(pk__in=ids_in(request.GET.getlist("pick")))
        initial["reference_results"] = list(
            GeneratedImage.objects.filter(generation__in=picked, index=0).values_list("pk", flat=True)
        )
        first = picked.order_by("pk").first()
        if first:  # the frame of the image edited: its model, shape and size, routed automatically
            initial = {**initial, **choices_of(first), "routing": AUTOMATIC, "prompt": ""}
        focus = True
    form = GenerationForm(initial=initial, user=request.user)
    if focus:  # the next thing to do is to write
        form.fields["prompt"].widget.attrs["autofocus"] = True
    return render(
        request,
        "studio/studio.html",
        form_context(request, form, entries=sets_of(recent_jobs(request))),
    )


@require_GET
def form_options(request: Request) -> HttpResponse:
    """Re-render the option fields, and the cost, for what is chosen in the form."""
    initial = {**request.GET.dict(), "compare_with": request.GET.getlist("compare_with")}
    form = GenerationForm(initial=initial, user=request.user)
    return render(request, "studio/options.html", form_context(request, form))


def invalid(request: Request, form: GenerationForm) -> HttpResponse:
    """The form again, with its errors next to the fields; nothing was stored."""
    if request.htmx:
        response = render(request, "studio/studio.html#generate_form", form_context(request, form))
        return reswap(retarget(response, "#generate-form"), "outerHTML")
    return render(
        request, "studio/studio.html", form_context(request, form, entries=sets_of(recent_jobs(request))), status=400
    )


@require_POST
def generate(request: Request) -> HttpResponse:
    form = GenerationForm(request.POST, request.FILES, user=request.user)
    if not form.is_valid():
        return invalid(request, form)
    try:
        with transaction.atomic():
            if compared := form.cleaned_data.get("compare_with"):  # side by side: one set across models
                jobs = start_comparison(owner=request.user, spec=form.job_spec(), models=compared)
            else:
                jobs = pipeline.start(owner=request.user, spec=form.job_spec())
            form.apply_extras(jobs, by=request.user)
    except (ledger.OverBudget, pipeline.NoAccount, NotStarted) as refusal:
        form.add_error(None, str(refusal))
        return invalid(request, form)
    if request.htmx:  # the options again, as chosen but for one image: "Images: 4" is not sticky
        fresh = GenerationForm(initial={**request.POST.dict(), "count": 1}, user=request.user)
        return render(request, "studio/created.html", form_context(request, fresh, entries=sets_of(jobs)), status=201)
    return redirect("studio")


@require_GET
@never_cache
def generation_card(request: Request, pk: int) -> HttpResponse:
    """One job's card (the page's live channel updates cards; this URL serves one alone)."""
    return HttpResponse(card(request, visible_generation(request, pk)))


@require_POST
def cancel_set(request: Request, pk: int) -> HttpResponse:
    """ "Cancel all": every unfinished job submitted together with this one (its set)."""
    generation = generation_for(request, pk, "cancel_all")
    if generation.group is not None:
        pipeline.cancel_set(request.user, generation.group)
    else:
        pipeline.cancel(generation)
    if request.htmx:  # the cards come back through the page's live channel
        return HttpResponse(status=204)
    return redirect("studio")


@require_POST
def try_again(request: Request, pk: int) -> HttpResponse:
    """An ended job's spec as a new job: "Try again" after a failure (which was refunded),
    "Run again" after a success."""
    ended = generation_for(request, pk, "again")
    refs = [ref for _, ref in references.shown_to(request.user, ended)]
    if len(refs) < ended.reference_links.count() or any(ref.deleted for ref in refs):
        reason = (
            "A reference image of this job has been deleted or is no longer shared, so it cannot run again "
            "as it was: use Edit this image or Use this prompt with other references."
        )
        return render(request, "studio/refused.html", {"reason": reason}, status=409)
    try:
        with transaction.atomic():
            jobs = pipeline.start(owner=request.user, spec=spec.again(ended, refs))
    except (ledger.OverBudget, pipeline.NoAccount) as refusal:
        return render(request, "studio/refused.html", {"reason": str(refusal)}, status=409)
    return redirect(f"{reverse('studio')}#job-{jobs[0].pk}")


@require_POST
def generation_cancel(request: Request, pk: int) -> HttpResponse:
    generation = generation_for(request, pk, "cancel")
    pipeline.cancel(generation)
    generation.refresh_from_db()
    if request.htmx:
        in_studio = request.htmx.current_url_abs_path == reverse("studio")  # where the budget line is
        mine = in_studio and generation.owner_id == request.user.pk
        return HttpResponse(card(request, generation) + (budget_line(request) if mine else ""))
    return redirect(generation)


def detail_context(request: Request, generation: Generation) -> dict[str, Any]:
    made_into = Generation.visible(request.user).filter(reference_links__reference__result__generation=generation)
    feed.decorate([generation], request.user)
    return {
        "job": generation,
        "images": generation.images.all(),
        "references": references.shown_to(request.user, generation),
        "attempts": generation.attempt_log.select_related("account"),
        "made_into": made_into.distinct().order_by("-pk"),
    }


@require_GET
def generation_detail(request: Request, pk: int) -> HttpResponse:
    return render(request, "studio/detail.html", detail_context(request, visible_generation(request, pk)))


def watched_versions(value: str) -> dict[int, int]:
    """`12.3,13.7`: job 12 as the page shows it at version 3, and so on."""
    versions = {}
    for pair in value.split(",")[:MAX_WATCHED]:
        pk, _, version = pair.partition(".")
        job, seen = id_of(pk), id_of(version)
        if job is not None and seen is not None:
            versions[job] = seen
    return versions


@require_GET
@never_cache
def live_updates(request: Request, view: str) -> HttpResponse:
    """A page's one live channel: the jobs it watches that changed since the versions it
    holds, as out-of-band swaps of their cards (or of the detail), or 204 when nothing did.
    Pages ask about once a second while something on them runs."""
    held = watched_versions(request.GET.get("v", ""))
    watched = Generation.objects.filter(pk__in=list(held)).order_by().only("version", "owner", "private", "deleted_at")
    current = {job.pk: job.version for job in watched if job.visible_to(request.user)}
    changed = [pk for pk, version in current.items() if version != held[pk]]
    gone = [pk for pk in held if pk not in current]  # deleted, or made private meanwhile
    if not changed and not gone:
        return HttpResponse(status=204)
    jobs = Generation.objects.filter(pk__in=changed).select_related("account", "owner").prefetch_related("images")
    parts: list[str] = []
    sets_done = set()
    for job in jobs:
        if view == "detail":
            context = {**detail_context(request, job), "oob": True}
            parts.append(render_to_string("studio/detail.html#detail", context, request))
        elif job.group not in sets_done:  # a set's card once, however many of its jobs changed
            parts.append(card(request, job, oob=True))
            if job.group is not None:
                sets_done.add(job.group)
    parts += [render_to_string("studio/studio.html#gone", {"pk": pk, "view": view}, request) for pk in gone]
    if view == "card" and any(job.is_terminal for job in jobs):  # a refund (or a charge) moved what is left
        parts.append(budget_line(request))
    return HttpResponse("".join(parts))


def budget_line(request: Request) -> str:
    """The studio's "You have … left" line, swapped in out of band."""
    context = {
        "available": ledger.available(request.user),
        "standing": ledger.standing(request.user),
        "budget_oob": True,
    }
    return render_to_string("studio/studio.html#budget", context, request)


def render_feed(
    request: Request, template: str, context: dict, among: QuerySet[Generation] | None = None, status: int = 200
) -> HttpResponse:
    """A page of the gallery or of a board; htmx gets only the part it asked for."""
    filters = feed.FeedFilters(request.GET)
    jobs, next_cursor = feed.page(filters, request.user, among)
    context = {**context, "filters": filters, "jobs": jobs, "next_cursor": next_cursor, "query": request.GET.copy()}
    if request.htmx and "before" in request.GET:  # "load more": the next page only
        return render(request, "studio/feed.html#feed_page", context)
    if request.htmx:  # a changed filter: the results only
        return render(request, "studio/feed.html#results", context)
    return render(request, template, context, status=status)


@require_GET
def gallery(request: Request) -> HttpResponse:
    return render_feed(request, "studio/gallery.html", {})


@require_http_methods(["GET", "POST"])
def rate(request: Request, pk: int) -> HttpResponse:
    """Set this person's stars for a result (1–5), or clear them (0). GET: the stars as they
    are (the lightbox asks for those of the image it shows)."""
    generation = visible_generation(request, pk)
    where = "lightbox" if request.GET.get("where", request.POST.get("where")) == "lightbox" else ""
    if request.method == "GET":
        feed.decorate([generation], request.user)
        return render(request, "studio/card.html#rating", {"job": generation, "where": where})
    stars = request.POST.get("stars", "")
    if stars not in {"0", *map(str, Rating.STARS)}:
        return HttpResponse("Give 1 to 5 stars, or 0 to clear.", status=400, content_type="text/plain")
    if stars == "0":
        Rating.objects.filter(user=request.user, generation=generation).delete()
    else:
        Rating.objects.update_or_create(user=request.user, generation=generation, defaults={"stars": int(stars)})
    if request.htmx:
        feed.decorate([generation], request.user)
        return render(request, "studio/card.html#rating", {"job": generation, "where": where})
    return back_to(request, generation)


@require_POST
def delete_generation(request: Request, pk: int) -> HttpResponse:
    history.delete(generation_for(request, pk, "delete"))
    return redirect("gallery")


MAX_ZIP = 200


@require_GET
def download_zip(request: Request) -> HttpResponse | FileResponse:
    """The originals of the chosen generations, with their metadata, as one ZIP (read-only: GET)."""
    ids = ids_in(request.GET.getlist("pick"))[:MAX_ZIP]
    chosen = list(
        Generation.visible(request.user)
        .filter(pk__in=ids, status=Generation.Status.SUCCEEDED)
        .select_related("owner", "account")
        .prefetch_related("images")
        .order_by("pk")
    )
    if not chosen:
        return render(request, "studio/zip_empty.html", status=400)
    return zip_response(history.zip_of(chosen), count=len(chosen))


@require_http_methods(["GET", "POST"])
def prompt_library(request: Request) -> HttpResponse:
    """The team's presets: search them, save one, use one in the studio."""
    if request.method == "POST":
        form = SavedPromptForm(request.POST)
        if form.is_valid():
            form.instance.created_by = request.user
            form.save()
            return redirect("prompt_library")
    else:
        source_id = request.GET.get("from", "")  # "Save as a preset" from a detail page: its prompt and options
        source = Generation.visible(request.user).filter(pk=id_of(source_id) or 0).first() if source_id else None
        form = SavedPromptForm(initial={**choices_of(source), "prompt": source.prompt} if source else None)
    saved = SavedPrompt.visible(request.user).select_related("created_by")
    query = request.GET.get("q", "").strip()
    for word in query.split():
        saved = saved.filter(Q(title__icontains=word) | Q(prompt__icontains=word) | Q(tags__icontains=word))
    presets = list(saved[:200])
    for preset in presets:
        preset.changeable = preset.may_change(request.user)
    return render(request, "studio/prompts.html", {"form": form, "saved": presets, "query": query})


def changeable_preset(request: Request, pk: int) -> SavedPrompt:
    """A preset this user may change: their own, or any for staff. Others' are 404 (a
    private one must not even be known to exist), shared ones 403."""
    preset = get_object_or_404(SavedPrompt.visible(request.user), pk=pk)
    if not preset.may_change(request.user):
        raise PermissionDenied("Only the person who saved this preset, or staff, can change it.")
    return preset


@require_http_methods(["GET", "POST"])
def edit_preset(request: Request, pk: int) -> HttpResponse:
    preset = changeable_preset(request, pk)
    form = SavedPromptForm(request.POST or None, instance=preset)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("prompt_library")
    return render(request, "studio/preset_edit.html", {"form": form, "preset": preset})


@require_POST
def delete_preset(request: Request, pk: int) -> HttpResponse:
    changeable_preset(request, pk).delete()
    return redirect("prompt_library")


@require_POST
def toggle_private(request: Request, pk: int) -> HttpResponse:
    generation = generation_for(request, pk, "share")
    Generation.objects.filter(pk=generation.pk).update(private=not generation.private)
    return redirect(generation)


@require_GET
def generation_reference(request: Request, pk: int, position: int) -> HttpResponse | FileResponse:
    """A job's reference image, for whoever may see the job and, for an earlier result, that result."""
    generation = visible_generation(request, pk)
    link = get_object_or_404(
        generation.reference_links.select_related("reference__result__generation"), position=position
    )
    if link.reference.deleted or not link.reference.visible_to(request.user):
        raise Http404
    return private_image(request, link.reference.stored_file, content_type=link.reference.mime_type)


@require_GET
def image_file(request: Request, pk: int, variant: str) -> HttpResponse | FileResponse:
    image = visible_image(request, pk)
    rendition = {"thumbnail": image.thumbnail, "display": image.display}.get(variant)
    if rendition:
        return private_image(request, rendition, content_type="image/webp")
    # The original; also what stands in for renditions not made yet.
    return private_image(
        request,
        image.original,
        content_type=image.mime_type,
        as_attachment="download" in request.GET,
        filename=image.download_name,
    )


def private_image(request: Request, file: FieldFile, **response_options: Any) -> HttpResponse | FileResponse:
    """An image for a viewer the view has checked. The browser keeps it but asks before each use
    (no-cache + ETag: a 304 costs little), so an image made private or deleted is refused at once.
    Stored files are never rewritten (a new image gets a new name), so the name makes the ETag."""
    etag = quote_etag(hashlib.sha256(str(file.name).encode()).hexdigest()[:32])
    response = get_conditional_response(request, etag=etag) or FileResponse(file.open("rb"), **response_options)
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


THEMES = {"auto": "dark", "dark": "light", "light": "auto"}  # each press moves to the next


@require_POST
def set_theme(request: Request) -> HttpResponse:
    """The colour scheme this browser shows: the system's (auto), dark or light, kept in a cookie
    so that the page is drawn in it from the first paint."""
    chosen = request.POST.get("theme", "")
    if chosen not in THEMES:
        return HttpResponse("Choose auto, dark or light.", status=400, content_type="text/plain")
    response = back_to(request, "studio")
    response.set_cookie("theme", chosen, max_age=365 * 24 * 3600, samesite="Lax", secure=request.is_secure())
    return response
