from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from nanoweb.studio.models import GeneratedImage, Generation


class Board(models.Model):
    """A named collection of results: shared with the team, or private to its owner.

    Its owner and staff change it (name, sharing, cover, anyone's items); on a board they
    may see, teammates add their own results and take back what they added. Whatever is
    on it, each person sees only the items `Generation.visible` lets them see."""

    name = models.CharField(max_length=120)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="boards")
    private = models.BooleanField(default=False, help_text="Only its owner and staff see it.")
    # The owner's choice; people who may not see it get the newest item they may see instead.
    cover = models.ForeignKey(Generation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    items = models.ManyToManyField(Generation, through="BoardItem", related_name="boards")

    if TYPE_CHECKING:
        cover_image: GeneratedImage | None  # on listings: set by items.summaries

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("board", args=[self.pk])

    @classmethod
    def visible(cls, user) -> models.QuerySet[Board]:
        """The boards this user may see: the team's shared boards and their own."""
        return cls.objects.all() if user.is_staff else cls.objects.filter(Q(private=False) | Q(owner=user))

    def managed_by(self, user) -> bool:
        return user.is_staff or self.owner_id == user.pk


class BoardItem(models.Model):
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="entries")
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="board_entries")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Also the board page's index: a board's items, newest generation first.
        constraints = [models.UniqueConstraint(fields=["board", "generation"], name="once_per_board")]
