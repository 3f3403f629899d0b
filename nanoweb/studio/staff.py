"""A staff page over the studio's jobs, reached from the credit review: a person's generations
in a period, with what each cost. It is the studio's (it lists jobs), so that credits, below the
studio, never import it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from nanoweb.credits.views import chosen_range
from nanoweb.studio.models import Generation
from nanoweb.web import Request, staff_required


@require_GET
@staff_required
def person_generations(request: Request, user_id: int) -> HttpResponse:
    person = get_object_or_404(get_user_model(), pk=user_id)
    form, period = chosen_range(request)
    start, end = period.bounds
    generations = (
        Generation.objects.filter(owner=person, created_at__gte=start, created_at__lt=end)
        .select_related("account")
        .order_by("-created_at")
    )
    return render(
        request, "credits/person.html", {"person": person, "form": form, "period": period, "generations": generations}
    )
