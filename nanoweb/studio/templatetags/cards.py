"""Template helpers for the gallery's cards, in Python: a page shows thirty cards, and as
template code these were a third of its render time."""

from __future__ import annotations

import functools

from django import template
from django.urls import get_script_prefix, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from nanoweb.studio.feed import Stars
from nanoweb.studio.models import Allowed, Generation

register = template.Library()
MARKER = 987654321987654321  # stands for the id in a reversed pattern


@functools.lru_cache(maxsize=64)
def _pattern(name: str, prefix: str) -> str:
    return reverse(name, args=[MARKER])


@register.simple_tag
def pk_url(name: str, pk: int) -> SafeString:
    """`{% url name pk %}` for URLs whose one argument is an id, reversed once per name."""
    return mark_safe(_pattern(name, get_script_prefix()).replace(str(MARKER), str(int(pk))))


@functools.lru_cache(maxsize=64)
def _fixed(name: str, prefix: str) -> str:
    return reverse(name)


@register.simple_tag
def fixed_url(name: str) -> str:
    """`{% url name %}` for URLs without arguments, reversed once per name."""
    return _fixed(name, get_script_prefix())


@register.simple_tag(takes_context=True)
def allowed(context: template.Context, job: Generation) -> Allowed:
    """What this person may do with the job (`Generation.allowed`): `{% allowed job as may %}`."""
    return job.allowed(context["user"])


@register.simple_tag
def star_buttons(stars: Stars, pk: int, where: str = "") -> SafeString:
    """Five buttons: press one to give that many stars, press your current rating to clear it.
    (No text from people in them: numbers and fixed words only.) Each has an id of its job and
    number (and where it is: the lightbox has its own), so that htmx gives the keyboard focus back
    to the same star after the swap."""
    buttons = []
    for n in range(1, 6):
        current = n == stars.mine
        label = f"Your rating: {n} of 5 (press to clear)" if current else f"Rate {n} of 5"
        buttons.append(
            f'<button class="star{" on" if n <= stars.mine else ""}" id="{where or "rate"}-{int(pk)}-{n}" type="submit" '
            'name="stars" '
            f'value="{0 if current else n}" aria-pressed="{"true" if current else "false"}" aria-label="{label}">'
            f"{'★' if n <= stars.mine else '☆'}</button>"
        )
    html = mark_safe("".join(buttons))
    if not stars.count:
        return html
    plural = "" if stars.count == 1 else "s"
    return html + format_html(
        '<span class="team-stars" title="Team average of {} rating{}">{} · {}</span>',
        stars.count, plural, f"{stars.average:.1f}", stars.count,
    )  # fmt: skip


@register.simple_tag
def card_preview(job, image=None, *, big: bool = False, tile: int = 0) -> SafeString:
    """A result's picture as a link to its page that opens the lightbox (or, `big`, the
    detail page's display-size picture); before there is one, its shape with the failure
    or a pending pulse. `tile`: its number in a set of variations."""
    failed = job.failed_or_canceled
    said = "" if tile else Truncator(job.error_message).chars(160)  # a card shows the gist; its page, all
    shape = format_html('<svg class="shape" viewBox="{}" aria-hidden="true" focusable="false"></svg>', job.shape)
    if image:
        picture = format_html(
            '<img src="{}" alt="{}" width="{}" height="{}"{}>',
            pk_url("image_display" if big else "image_thumbnail", image.pk), job.prompt[:120],
            image.width, image.height, "" if big else mark_safe(' loading="lazy"'),
        )  # fmt: skip
    elif failed:
        picture = format_html(
            '<span class="failure"><strong>{}</strong>{} <span class="refunded">Nothing was charged.</span></span>',
            job.get_status_display(), f" {job.error_message}" if big else (f" {said}" if said else ""),
        )  # fmt: skip
    else:
        picture = mark_safe('<span class="pending" aria-hidden="true"></span>')
    if big:
        return format_html('<div class="preview big">{}{}</div>', "" if image else shape, picture)
    # The name starts with the words the picture shows (a failure's), then says where it leads.
    seen = ""
    if failed and not image:
        seen = job.get_status_display() + (f" {said}" if said else "") + " Nothing was charged. "
    label = seen + (f"Variation {tile}: " if tile else "") + ("" if seen else f"{job.get_status_display()}. ")
    label += f"Open details of: {Truncator(job.prompt).chars(60)}"
    lightbox = ""
    if image:
        lightbox = format_html(
            ' data-lightbox="{}" data-original="{}" data-pick="{}" data-caption="{}" data-rate="{}"',
            pk_url("image_display", image.pk), pk_url("image_original", image.pk), job.pk, job.prompt[:200],
            pk_url("rate", job.pk),
        )  # fmt: skip
    return format_html(
        '<a class="preview" href="{}" aria-label="{}"{}>{}{}</a>',
        pk_url("generation_detail", job.pk), label, lightbox, shape, picture,
    )  # fmt: skip
