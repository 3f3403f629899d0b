from __future__ import annotations

import builtins
import functools
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.db.models import Q
from django.db.models.fields.files import FieldFile
from django.urls import reverse
from django.utils import timezone

from nanoweb.credits import ledger
from nanoweb.lib.images import CheckedImage, Renditions
from nanoweb.providers.base import ProviderError
from nanoweb.providers.models import Attempt, CatalogueEntry, Options, ProviderAccount
from nanoweb.providers.routing import Need
from nanoweb.studio import events


class IllegalTransition(ValueError):
    """A status change the transition table does not allow: a bug, never a race."""


if TYPE_CHECKING:
    from nanoweb.studio.feed import Stars


Action = Literal["cancel", "cancel_all", "again", "delete", "share"]


@dataclass(frozen=True)
class Allowed:
    """What one person may do with one job: the one rule behind its views, its card and its page."""

    cancel: bool  # stop it (refunded): its owner, and staff
    cancel_all: bool  # stop every unfinished job of its set of variations: its owner
    again: bool  # once it ended, "Try again" (failed or canceled) or "Run again" (done): its owner
    delete: bool  # its owner, and staff
    share: bool  # make it private or shared: only its owner decides who sees their work

    def __getitem__(self, action: Action) -> bool:
        return getattr(self, action)


def new_callback_token() -> str:
    return secrets.token_urlsafe(32)


# A waiting reason that already says until when ("… allows 100 requests an hour; next free at 14:32").
NAMES_ITS_TIME = "; next free at "


class Generation(models.Model):
    """One image job. Status only moves through `advance`, a conditional update checked
    against `TRANSITIONS`."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SUBMITTING = "submitting", "Submitting"
        SUBMITTED = "submitted", "Submitted"
        RUNNING = "running", "Generating"
        FINISHING = "finishing", "Saving"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELED})
    LIST, VENDOR = "list", "vendor"  # lanes (see `lane`)
    # States in which the provider holds the job and the poll sweep follows it.
    FOLLOWED = frozenset({Status.SUBMITTED, Status.RUNNING})
    # FINISHING: the provider is done; a finishing task (any worker) downloads and stores.
    ACTIVE = frozenset({Status.QUEUED, Status.SUBMITTING, Status.FINISHING}) | FOLLOWED
    # States in which the sweep comes back to the job at `due_at`: to submit it, to
    # read its status, or (a synchronous call or a finishing task holding it) because the
    # process holding it stopped renewing its lease.
    DUE_STATES = frozenset({Status.QUEUED, Status.SUBMITTING, Status.FINISHING}) | FOLLOWED
    # States in which a job may wait, with the reason on its card: to try again, or (SUBMITTING)
    # for the provider to report a job whose create was interrupted (`pipeline.adopt`).
    WAITING = frozenset({Status.QUEUED, Status.SUBMITTING, Status.FINISHING})
    # Besides the status, what a job's card and page show that changes while it runs.
    SHOWN_FIELDS = frozenset({"progress", "waiting_reason", "error_message", "account"})
    # Every status change there is. A state may move to itself to be rescheduled; back to
    # QUEUED is a retry or a failover (the same job, on the same or another account).
    TRANSITIONS: dict[str, frozenset[str]] = {
        # A synchronous call goes straight to RUNNING: the call is out, held by its process.
        Status.QUEUED: frozenset({Status.QUEUED, Status.SUBMITTING, Status.RUNNING, Status.FAILED, Status.CANCELED}),
        Status.SUBMITTING: frozenset(
            {Status.SUBMITTING, Status.SUBMITTED, Status.QUEUED, Status.FAILED, Status.CANCELED}
        ),
        Status.SUBMITTED: frozenset(
            {Status.SUBMITTED, Status.RUNNING, Status.FINISHING, Status.FAILED, Status.CANCELED}
        ),
        # A synchronous call is RUNNING while it is out; it goes back to QUEUED to be tried again.
        Status.RUNNING: frozenset({Status.RUNNING, Status.QUEUED, Status.FINISHING, Status.FAILED, Status.CANCELED}),
        # The provider is done: a finishing task stores the images (or finds them broken), or
        # waits to download them again when the provider's file is not there yet.
        Status.FINISHING: frozenset({Status.FINISHING, Status.SUCCEEDED, Status.FAILED, Status.CANCELED}),
        Status.SUCCEEDED: frozenset(),
        Status.FAILED: frozenset(),
        Status.CANCELED: frozenset(),
    }

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    prompt = models.TextField()
    # The account serving the job now (failover changes it), and its model id.
    account = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT)
    model = models.CharField(max_length=120)
    # What the member chose: the catalogue's model name, and whether routing picks the account.
    model_name = models.CharField(max_length=80, blank=True)
    automatic = models.BooleanField(default=True)
    aspect_ratio = models.CharField(max_length=10, blank=True)
    resolution = models.CharField(max_length=10, blank=True)
    output_format = models.CharField(max_length=10, blank=True)
    google_search = models.BooleanField(default=False)
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    private = models.BooleanField(default=False, help_text="Only its owner and staff see it.")
    # Variations made by one submission share a group (so do the jobs of one side-by-side comparison).
    group = models.UUIDField(null=True, blank=True, db_index=True)
    # Who waits for it: a member at the studio (""), or a list of prompts (a batch), which
    # takes turns between owners after interactive jobs, or one sent in a vendor's own batch
    # at the vendor's batch price, read rarely until that batch ends.
    lane = models.CharField(
        max_length=8,
        blank=True,
        default="",
        choices=[("", "interactive"), ("list", "batch"), ("vendor", "vendor batch")],
    )
    # Deleted: files gone, hidden everywhere; the row stays for the ledger's sake.
    deleted_at = models.DateTimeField(null=True, blank=True)
    references: models.ManyToManyField[ReferenceImage, GenerationReference] = models.ManyToManyField(
        "ReferenceImage", through="GenerationReference", blank=True
    )

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    # Raised by every change a card shows (state, progress): pages ask what changed since.
    version = models.PositiveIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    # When `progress` was reported, while it is worth extrapolating (see schedule.py).
    progress_at = models.DateTimeField(null=True, blank=True)
    provider_task_id = models.CharField(max_length=200, blank=True)
    provider_cost = models.CharField(max_length=40, blank=True)
    error_kind = models.CharField(max_length=20, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    error_detail = models.TextField(blank=True)
    retryable = models.BooleanField(default=False)
    # Why a queued job waits (a retry or a failover), for its card.
    waiting_reason = models.CharField(max_length=300, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # For the sweep: when to come back (submit, read the status, or check on whoever holds
    # the job), which sweep or process holds it now, and how often it tried.
    due_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # create calls made, on any account
    # The last status read that found the job unfinished.
    last_read_at = models.DateTimeField(null=True, blank=True)
    # Estimated seconds from submission to the provider being done: the account's history.
    provider_seconds = models.FloatField(null=True, blank=True)
    # When the provider said it was done (finishing may retry a download until RESULT_FETCH_SECONDS after).
    saving_since = models.DateTimeField(null=True, blank=True)
    # What the finishing task stores: [{"url": ...} or {"file": name of the bytes kept meanwhile}].
    results: models.JSONField[list[dict[str, str]], list[dict[str, str]]] = models.JSONField(default=list, blank=True)
    poll_count = models.PositiveIntegerField(default=0)
    poll_errors = models.PositiveIntegerField(default=0)
    callback_token = models.CharField(max_length=64, default=new_callback_token, unique=True)

    if TYPE_CHECKING:
        stars: Stars  # on listings: set by feed.decorate

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(
                fields=["due_at"],
                name="generation_due",
                condition=Q(status__in=["queued", "submitting", "submitted", "running", "finishing"]),
            ),
            # Results being stored: the renderer gives way to them (finishing.results_waiting).
            models.Index(fields=["status"], name="generation_finishing", condition=Q(status="finishing")),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.prompt[:40]}"

    def get_absolute_url(self) -> str:
        return reverse("generation_detail", args=[self.pk])

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def failed_or_canceled(self) -> bool:
        """Ended without an image (and refunded)."""
        return self.status in (self.Status.FAILED, self.Status.CANCELED)

    @property
    def duration(self) -> float | None:
        if self.finished_at:
            return (self.finished_at - self.created_at).total_seconds()
        return None

    @property
    def elapsed(self) -> float:
        return ((self.finished_at or timezone.now()) - self.created_at).total_seconds()

    @property
    def shape(self) -> str:
        """The preview box's shape before the image exists, so nothing jumps when it arrives:
        an SVG viewBox (no inline style, which the Content-Security-Policy refuses)."""
        width, _, height = self.aspect_ratio.partition(":")
        return f"0 0 {width} {height}" if width.isdigit() and height.isdigit() else "0 0 1 1"

    @property
    def deadline(self) -> datetime:
        """When the job ends if it has no result yet; a vendor's batch (half price, within a day) has a longer one."""
        seconds = settings.VENDOR_BATCH_DEADLINE_SECONDS if self.lane == self.VENDOR else settings.JOB_DEADLINE_SECONDS
        return self.created_at + timedelta(seconds=seconds)

    @property
    def image(self) -> GeneratedImage | None:
        """The first result image (from prefetched images, when they are). Only a finished job
        has one: the images are read in a query after the job's, and a job that finished between
        the two must not show its image beside a status that says it is still saving."""
        if self.status != self.Status.SUCCEEDED:
            return None
        images = self.images.all()
        return images[0] if images else None

    @property
    def model_label(self) -> str:
        return self.model_name or self.model

    @property
    def options(self) -> Options:
        return Options(self.aspect_ratio, self.resolution, self.output_format, self.google_search)

    def need(self) -> Need:
        """What routing must find for this job, e.g. another account when this one refuses."""
        references = self.reference_links.aggregate(n=models.Count("pk"), size=models.Sum("reference__bytes"))
        return Need(
            self.model_name,
            self.options,
            references["n"],
            account=None if self.automatic else self.account_id,
            reference_bytes=references["size"] or 0,
        )

    def catalogue_row(self) -> CatalogueEntry | None:
        return CatalogueEntry.objects.filter(account_id=self.account_id, model_id=self.model).first()

    @property
    def waiting_line(self) -> str:
        """Why a queued job waits and when it tries again, e.g. "crun is rate-limiting us;
        trying again in 12 s, attempt 3 of 6", or why its result is not stored yet."""
        if self.status not in self.WAITING or not self.waiting_reason:
            return ""
        if not (seconds := self.retry_in) or NAMES_ITS_TIME in self.waiting_reason:
            return self.waiting_reason
        if self.status == self.Status.FINISHING:
            return f"{self.waiting_reason}; trying again in {seconds} s, for up to {settings.RESULT_FETCH_SECONDS} s"
        return (
            f"{self.waiting_reason}; trying again in {seconds} s, "
            f"attempt {self.attempts + 1} of {settings.CREATE_RETRY_ATTEMPTS}"
        )

    @property
    def retry_in(self) -> int:
        """Whole seconds until a waiting job tries again (0: now, or not waiting); the page
        counts them down between its updates. A create cut off waits for the provider's word, not to try again."""
        if self.status not in self.WAITING - {self.Status.SUBMITTING} or not self.waiting_reason or self.due_at is None:
            return 0
        return max(0, math.ceil((self.due_at - timezone.now()).total_seconds()))

    def visible_to(self, user) -> bool:
        return self.deleted_at is None and (not self.private or user.is_staff or self.owner_id == user.pk)

    def allowed(self, user) -> Allowed:
        """What this user may do with the job (among those who may see it)."""
        own = self.owner_id == user.pk
        return Allowed(
            cancel=own or user.is_staff,
            cancel_all=own,
            again=own and self.is_terminal,
            delete=own or user.is_staff,
            share=own,
        )

    @property
    def cost_line(self) -> str:
        """What the job costs its owner: charged when done, refunded when it ended otherwise, reserved meanwhile."""
        if self.price is None:
            return "—"
        if self.status == self.Status.SUCCEEDED:
            return f"{ledger.money(self.price)} charged"
        return f"{ledger.money(self.price)} {'refunded' if self.is_terminal else 'reserved'}"

    @classmethod
    def visible(cls, user) -> models.QuerySet:
        """Everything this user may see: the team's shared work, and their own private work."""
        present = cls.objects.filter(deleted_at__isnull=True)
        return present if user.is_staff else present.filter(Q(private=False) | Q(owner=user))

    def advance(self, old: str | frozenset[str], new: str, **fields: Any) -> bool:
        """Move from `old` (one state or a set) to `new` iff the row is still there: the one
        writer of `status`. Returns False when another worker moved it first; the caller then
        does nothing. A move the transition table lacks raises IllegalTransition.
        """
        olds = [old] if isinstance(old, str) else sorted(old)
        if illegal := [state for state in olds if new not in self.TRANSITIONS[state]]:
            raise IllegalTransition(f"{', '.join(illegal)} → {new}")
        if new in self.TERMINAL:
            fields.setdefault("finished_at", timezone.now())
            fields.setdefault("due_at", None)
        # Pages watch `version`: raised when the move changes what a card shows.
        shown = olds != [new] or bool(self.SHOWN_FIELDS & fields.keys())
        with transaction.atomic():
            updated = Generation.objects.filter(pk=self.pk, status__in=olds).update(
                status=new, **({"version": models.F("version") + 1} if shown else {}), **fields
            )
            if updated:
                self.status = new
                self.version += shown
                for name, value in fields.items():
                    setattr(self, name, value)
                if new in self.TERMINAL:
                    # The charge or refund commits with the final state, or neither does.
                    ledger.close_job(self, succeeded=new == self.Status.SUCCEEDED)
                    self._close_attempt()
                    # Webhooks hear of it once it has committed; their failure is logged, never the job's.
                    transaction.on_commit(
                        functools.partial(events.job_ended.send_robust, Generation, pk=self.pk, status=new), robust=True
                    )
        return bool(updated)

    # What `fail` is recording, for the attempt that ends with the job.
    _failing: ProviderError | None = None

    def _close_attempt(self) -> None:
        """The attempt that was out (sending, or accepted by the provider) ends with the job; a
        failure as `fail` recorded it (the provider's words, or a detail for staff only)."""
        outcome: dict[str, str] = {
            self.Status.SUCCEEDED: Attempt.Outcome.SUCCEEDED,
            self.Status.CANCELED: Attempt.Outcome.CANCELED,
        }
        Attempt.objects.filter(generation=self, outcome__in=[Attempt.Outcome.SENDING, Attempt.Outcome.ACCEPTED]).update(
            outcome=outcome.get(self.status, Attempt.Outcome.FAILED),
            ended_at=self.finished_at,
            **Attempt.error_fields(self._failing if self.status == self.Status.FAILED else None),
        )

    def fail(
        self,
        old: str | frozenset[str],
        error: ProviderError,
        *,
        provider_said: bool = False,
        note: str = "",
        **fields: Any,
    ) -> bool:
        """End the job failed. With `provider_said`, the reason members read quotes the
        provider's own words (its last error), not only our sentence about them; a `note` of ours
        follows them."""
        message = error.message
        if provider_said and error.said:
            message = f"{message} {self.account.name} said: {error.said}"
        message = f"{message} {note}".strip()
        self._failing = error if provider_said else ProviderError(error.kind, error.detail, transport=True)
        return self.advance(
            old,
            self.Status.FAILED,
            error_kind=error.kind,
            error_message=message[:300],
            error_detail=f"{error.detail} {note}".strip(),
            retryable=error.retryable,
            waiting_reason="",
            **fields,
        )


def original_path(image: GeneratedImage, filename: str) -> str:
    return f"originals/{timezone.now():%Y/%m}/{filename}"


def thumbnail_path(image: GeneratedImage, filename: str) -> str:
    return f"thumbnails/{timezone.now():%Y/%m}/{filename}"


def display_path(image: GeneratedImage, filename: str) -> str:
    return f"display/{timezone.now():%Y/%m}/{filename}"


class GeneratedImage(models.Model):
    """A result image: the provider's file byte for byte, a WebP rendition for viewing
    (at most 2048 px; a 4K original is about ten times its bytes), and a WebP thumbnail.
    The renditions come a moment after the original (finishing.py); until then, and for
    images stored before renditions existed, the original stands in for them."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="images")
    index = models.PositiveSmallIntegerField(default=0)
    original = models.FileField(upload_to=original_path, max_length=200)
    thumbnail = models.FileField(upload_to=thumbnail_path, max_length=200, blank=True)
    display = models.FileField(upload_to=display_path, max_length=200, blank=True)
    # The original could not be decoded for renditions (it keeps standing in for them).
    unreadable = models.BooleanField(default=False)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    mime_type = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["generation", "index"]
        constraints = [models.UniqueConstraint(fields=["generation", "index"], name="one_image_per_slot")]

    @property
    def extension(self) -> str:
        return (self.original.name or "").rsplit(".", 1)[-1]

    @property
    def files(self) -> list[FieldFile]:
        """Every stored file of this image, for deleting them together."""
        return [stored for stored in (self.original, self.thumbnail, self.display) if stored]

    def store(self, checked: CheckedImage, stem: str) -> None:
        """Write the checked original (the row itself is not saved). A file already at its name
        can only be what a finishing task that died before saving its row left: it is replaced,
        not kept beside the new one with no row pointing to it."""
        filename = f"{stem}.{checked.extension}"
        self.original.storage.delete(self.original.field.generate_filename(self, filename))
        self.original.save(filename, ContentFile(checked.data), save=False)

    def store_renditions(self, made: Renditions) -> bool:
        """Write the renditions and record them, unless another process did first (then
        theirs stay, and these files go). True if these were recorded. An image stored before
        display renditions existed has a thumbnail already: it gets a new one beside its first."""
        earlier_thumbnail = str(self.thumbnail.name or "")
        stem = PurePosixPath(str(self.original.name)).stem
        self.display.save(f"{stem}.webp", ContentFile(made.display), save=False)
        self.thumbnail.save(f"{stem}.webp", ContentFile(made.thumbnail), save=False)
        recorded = GeneratedImage.objects.filter(pk=self.pk, display="").update(
            display=self.display.name, thumbnail=self.thumbnail.name
        )
        superseded = [earlier_thumbnail] if recorded else [str(self.display.name), str(self.thumbnail.name)]
        for name in filter(None, superseded):
            self.display.storage.delete(name)
        return bool(recorded)

    @property
    def download_name(self) -> str:
        return f"nanoweb-{self.generation_id}-{self.index}.{self.extension}"


def reference_path(reference: ReferenceImage, filename: str) -> str:
    return f"references/{timezone.now():%Y/%m}/{filename}"


class ReferenceImage(models.Model):
    """An image a job is made from: an upload (its own file) or an earlier result (that
    result's file, not a copy)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    file = models.FileField(upload_to=reference_path, max_length=200, blank=True)
    # Emptied (file and result both) when the image it names was deleted.
    result = models.ForeignKey(GeneratedImage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    mime_type = models.CharField(max_length=40)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(file="") | Q(result__isnull=True), name="reference_is_an_upload_or_a_result"
            )
        ]

    @property
    def deleted(self) -> bool:
        return not self.file and self.result_id is None

    def visible_to(self, user) -> bool:
        """An upload is seen with the job it belongs to; an earlier result keeps its own
        privacy wherever it is used, so check the job that made it."""
        return self.result is None or self.result.generation.visible_to(user)

    @property
    def stored_file(self) -> FieldFile:
        """The upload's file, or the earlier result's original (never a copy)."""
        if self.deleted:
            raise FileNotFoundError("the image this reference named was deleted")
        return self.result.original if self.result else self.file

    def open(self):
        return self.stored_file.open("rb")

    def read(self) -> builtins.bytes:  # `bytes` is a field here
        with self.open() as handle:
            return handle.read()


class GenerationReference(models.Model):
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="reference_links")
    reference = models.ForeignKey(ReferenceImage, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["generation", "position"], name="one_reference_per_position")]


class SavedPrompt(models.Model):
    """A preset in the team's prompt library: a prompt with the model and options to use it
    with (`choices`, as the studio form's field names; empty for a prompt alone)."""

    CHOICE_NAMES = ("model", "aspect_ratio", "resolution", "output_format", "google_search")

    title = models.CharField(max_length=120)
    prompt = models.TextField(max_length=20_000)
    tags = models.CharField(max_length=200, blank=True, help_text="Comma-separated.")
    choices = models.JSONField(default=dict, blank=True)
    private = models.BooleanField(default=False, help_text="Only you (and staff) see a private preset.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @classmethod
    def visible(cls, user) -> models.QuerySet:
        """The team's shared presets and this user's private ones (staff see all, as with results)."""
        return cls.objects.all() if user.is_staff else cls.objects.filter(Q(private=False) | Q(created_by=user))

    def may_change(self, user) -> bool:
        return user.is_staff or self.created_by_id == user.pk

    @property
    def summary(self) -> str:
        """The model and options in a line ("Nano Banana 2 · 16:9 · 2K · PNG · search")."""
        parts = [str(self.choices.get(name, "")) for name in ("model", "aspect_ratio", "resolution")]
        parts.append(str(self.choices.get("output_format", "")).upper())
        if self.choices.get("google_search"):
            parts.append("Google Search")
        return " · ".join(part for part in parts if part)

    @property
    def tag_list(self) -> list[str]:
        return [tag.strip() for tag in self.tags.split(",") if tag.strip()]


class Rating(models.Model):
    """One person's 1–5 stars for a result. They replace the old one-bit favourites
    (migrated as five stars): two star controls side by side would mean nearly the same."""

    STARS = range(1, 6)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratings")
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="ratings")
    stars = models.PositiveSmallIntegerField()
    rated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "generation"], name="one_rating_per_person"),
            models.CheckConstraint(condition=Q(stars__gte=1, stars__lte=5), name="one_to_five_stars"),
        ]
        # "My best first" and "my ratings of N and up", newest first within a rating.
        indexes = [models.Index(fields=["user", "stars", "generation"], name="rating_by_person_stars")]


class Lease(models.Model):
    """Who runs the poll sweep (or the renderer) now: a row each; a lease lapses if its holder dies."""

    name = models.CharField(max_length=20, primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField()
    # The relay: the sweep task the holder called to take over, and that task once it
    # runs and waits for the hand-over (it may wait in the queue behind finishing tasks).
    successor = models.CharField(max_length=64, blank=True)
    waiting = models.CharField(max_length=64, blank=True)
    # The rate limiter's recent requests, handed from one sweep to the next.
    limiter_state = models.JSONField(default=dict, blank=True)
