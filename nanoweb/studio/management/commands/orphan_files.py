"""List (and with --delete remove) stored files that no row points to.

Finishing tidies after itself; this is for what a crash or an older release left behind.
Files younger than --older-than minutes are left alone: a finishing task may have written
them a moment before committing its row.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from nanoweb.studio.models import GeneratedImage, Generation, ReferenceImage

FOLDERS = ("originals", "thumbnails", "display", "references", "incoming")


def stored_files(folder: str) -> Iterator[str]:
    if not default_storage.exists(folder):
        return
    stack = [folder]
    while stack:
        path = stack.pop()
        directories, files = default_storage.listdir(path)
        stack += [f"{path}/{name}" for name in directories]
        yield from (f"{path}/{name}" for name in files)


def referenced() -> set[str]:
    names: set[str] = set()
    for row in GeneratedImage.objects.values_list("original", "thumbnail", "display").iterator():
        names.update(row)
    names.update(ReferenceImage.objects.exclude(file="").values_list("file", flat=True).iterator())
    for results in Generation.objects.filter(status=Generation.Status.FINISHING).values_list("results", flat=True):
        names.update(result["file"] for result in results if "file" in result)
    return names


def orphans(older_than: timedelta) -> list[str]:
    """Stored files no row points to, older than `older_than`."""
    known = referenced()
    cutoff = timezone.now() - older_than
    return sorted(
        name
        for folder in FOLDERS
        for name in stored_files(folder)
        if name not in known and default_storage.get_modified_time(name) < cutoff
    )


class Command(BaseCommand):
    help = "List stored files that no row points to; --delete removes them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--delete", action="store_true", help="Remove the files listed.")
        parser.add_argument("--older-than", type=int, default=60, metavar="MINUTES", help="Default: 60.")

    def handle(self, *args, delete: bool, older_than: int, **options) -> None:
        found = orphans(timedelta(minutes=older_than))
        for name in found:
            self.stdout.write(name)
            if delete:
                default_storage.delete(name)
        verb = "removed" if delete else "found"
        self.stderr.write(f"{len(found)} file(s) no row points to {verb}.")
