"""Make the renditions that are missing, for images stored before display renditions existed
(the renderer does it for new images, and tries each original once).

It can run while the studio serves, and again after an interruption (it continues with what
is still missing). Until an image has its renditions, pages show the original.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from nanoweb.studio.jobs.finishing import make_renditions
from nanoweb.studio.models import GeneratedImage

BATCH = 100


class Command(BaseCommand):
    help = "Make the display rendition (WebP, at most 2048 px) and thumbnail of every image that lacks them."

    def handle(self, *args, **options) -> None:
        made = failed = 0
        after = 0
        while batch := list(GeneratedImage.objects.filter(display="", pk__gt=after).order_by("pk")[:BATCH]):
            for image in batch:
                after = image.pk
                if make_renditions(image):
                    made += 1
                else:
                    failed += 1
                    self.stderr.write(f"image {image.pk} ({image.original.name}): could not be read")
        self.stdout.write(f"made renditions of {made} images; {failed} originals could not be read")
