"""Give images stored before display renditions existed their rendition, once.

Run once after upgrading; it can run while the studio serves, and again after an
interruption (it continues with what is still missing). Until an image has its rendition,
the detail page and the lightbox show the original.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand

from nanoweb.lib import images
from nanoweb.studio.models import GeneratedImage

BATCH = 100


class Command(BaseCommand):
    help = "Make the display rendition (WebP, at most 2048 px) of every image that lacks one."

    def handle(self, *args, **options) -> None:
        made = failed = 0
        after = 0
        while batch := list(GeneratedImage.objects.filter(display="", pk__gt=after).order_by("pk")[:BATCH]):
            for image in batch:
                after = image.pk
                try:
                    with image.original.open("rb") as handle:
                        rendition = images.display_rendition(handle.read())
                except (OSError, images.InvalidImage) as exc:
                    failed += 1
                    self.stderr.write(f"image {image.pk} ({image.original.name}): {exc}")
                    continue
                image.display.save(
                    f"{PurePosixPath(str(image.original.name)).stem}.webp", ContentFile(rendition), save=False
                )
                # Whoever stores it first wins; a second run (or a concurrent one) keeps theirs.
                if GeneratedImage.objects.filter(pk=image.pk, display="").update(display=image.display.name):
                    made += 1
                else:
                    image.display.storage.delete(str(image.display.name))
        self.stdout.write(f"made {made} display renditions; {failed} originals could not be read")
