"""What people do with the shared history: delete their work, download a selection."""

from __future__ import annotations

import json
import tempfile
import zipfile

from django.db import transaction
from django.utils import timezone

from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation, GenerationReference, ReferenceImage


def delete(generation: Generation) -> None:
    """Remove the job's files from storage and hide it everywhere. A running job is cancelled
    (and refunded) first; the row and its ledger lines stay, so the books still balance.
    Later jobs made from its image keep their place in the lineage, marked as deleted."""
    pipeline.cancel(generation)
    with transaction.atomic():
        if not Generation.objects.filter(pk=generation.pk, deleted_at__isnull=True).update(deleted_at=timezone.now()):
            return  # someone deleted it first
        images = list(generation.images.all())
        uploads = ReferenceImage.objects.filter(
            pk__in=GenerationReference.objects.filter(generation=generation).values("reference"), result__isnull=True
        ).exclude(file="")
        # Uploads are shared only by the variations of one submission: keep those another live job still uses.
        still_used = GenerationReference.objects.filter(generation__deleted_at__isnull=True).values("reference")
        files = [stored for image in images for stored in image.files]
        files += [reference.file for reference in uploads.exclude(pk__in=still_used)]
        for image in images:
            image.delete()  # references to it become "deleted" (SET_NULL)
        transaction.on_commit(lambda: [stored.storage.delete(str(stored.name)) for stored in files])  # type: ignore[func-returns-value]


def zip_of(generations: list[Generation]) -> tempfile.SpooledTemporaryFile:
    """The originals of these generations and a metadata.json, as one ZIP file (rewound)."""
    out = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)
    metadata = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:  # images are compressed already
        for generation in generations:
            files = []
            for image in generation.images.all():
                with image.original.open("rb") as handle:
                    archive.writestr(image.download_name, handle.read())
                files.append(image.download_name)
            metadata.append({
                "id": generation.pk, "prompt": generation.prompt, "person": generation.owner.get_username(),
                "provider": generation.account.name, "model": generation.model, "aspect_ratio": generation.aspect_ratio,
                "resolution": generation.resolution, "output_format": generation.output_format,
                "google_search": generation.google_search, "status": generation.status,
                "created_at": generation.created_at.isoformat(),
                "finished_at": generation.finished_at.isoformat() if generation.finished_at else None,
                "model_name": generation.model_name,
                "cost": format(generation.price.normalize(), "f") if generation.price is not None else None,
                "files": files,
            })  # fmt: skip
        archive.writestr("metadata.json", json.dumps(metadata, indent=2, ensure_ascii=False))
    out.seek(0)
    return out
