"""Reference images: storing uploads, and the signed, expiring links providers fetch them by."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.db.models import Sum
from django.urls import reverse

from nanoweb.lib import images
from nanoweb.studio.models import GeneratedImage, Generation, GenerationReference, ReferenceImage

SALT = "nanoweb.reference-link"


def store(
    owner, *, uploads: list[images.CheckedImage], results: list[GeneratedImage], written: list[str]
) -> list[ReferenceImage]:
    """Reference rows for picked results (no copy) and uploads (their file, written once),
    in that order. Call inside the job's transaction; each file written is named in
    `written`, for the caller to remove should the transaction roll back."""
    refs = [
        ReferenceImage.objects.create(
            owner=owner,
            result=result,
            mime_type=result.mime_type,
            width=result.width,
            height=result.height,
            bytes=result.bytes,
            sha256=result.sha256,
        )  # fmt: skip
        for result in results
    ]
    for upload in uploads:
        reference = ReferenceImage(
            owner=owner, mime_type=upload.mime_type, width=upload.width, height=upload.height,
            bytes=len(upload.data), sha256=upload.sha256,
        )  # fmt: skip
        reference.file.save(f"{upload.sha256[:16]}.{upload.extension}", ContentFile(upload.data), save=False)
        written.append(str(reference.file.name))
        reference.save()
        refs.append(reference)
    return refs


def uploaded_bytes(owner) -> int:
    """What this member's uploaded references take on disk (earlier results are no copies)."""
    uploads = ReferenceImage.objects.filter(owner=owner).exclude(file="")
    return uploads.aggregate(total=Sum("bytes"))["total"] or 0


def link(generation: Generation, refs: list[ReferenceImage]) -> None:
    GenerationReference.objects.bulk_create(
        GenerationReference(generation=generation, reference=reference, position=position)
        for position, reference in enumerate(refs)
    )


def ordered(generation: Generation) -> list[ReferenceImage]:
    return [reference for _, reference in _positioned(generation)]


def shown_to(user, generation: Generation) -> list[tuple[int, ReferenceImage]]:
    """The references of a job this user may see, with their positions (the reference view's
    URLs): an earlier result made private, or deleted with its job, is left out."""
    return [(position, ref) for position, ref in _positioned(generation) if ref.visible_to(user)]


def _positioned(generation: Generation) -> list[tuple[int, ReferenceImage]]:
    links = generation.reference_links.select_related("reference__result__generation").order_by("position")
    return [(link.position, link.reference) for link in links]


def signed_url(reference: ReferenceImage) -> str:
    """A link a provider can fetch without signing in, valid for REFERENCE_LINK_SECONDS."""
    token = signing.TimestampSigner(salt=SALT).sign(str(reference.pk))
    return settings.PUBLIC_BASE_URL + reverse("reference_link", args=[token])


def from_token(token: str) -> ReferenceImage | None:
    """The reference a link names, or None if the link is forged or has expired."""
    try:
        pk = signing.TimestampSigner(salt=SALT).unsign(token, max_age=settings.REFERENCE_LINK_SECONDS)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    return ReferenceImage.objects.select_related("result").filter(pk=pk).first()
