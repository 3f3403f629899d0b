"""A small demo team and its work, for the page-wide browser tests and the screenshot tool:
finished images in several shapes, a set of variations, a failure, a cancellation, a running job,
a private image, ratings, a board, saved prompts, a budget and a grant."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from nanoweb.api.models import EVENTS, ApiToken, WebhookDelivery, WebhookEndpoint
from nanoweb.batches import rows
from nanoweb.batches.models import Batch
from nanoweb.batches.service import create_batch
from nanoweb.boards import items as board_items
from nanoweb.boards.models import Board
from nanoweb.credits import ledger
from nanoweb.credits.models import Budget
from nanoweb.providers.base import ErrorKind, ProviderError
from nanoweb.providers.models import Attempt, ProviderAccount
from nanoweb.providers.simulator.render import image as render_image
from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation, Rating, SavedPrompt
from tests.conftest import start_job, store_result, succeed

Status = Generation.Status
MODEL = "google/nano-banana-2"
SIZES = {"1:1": (640, 640), "16:9": (768, 432), "9:16": (432, 768), "4:3": (640, 480), "3:2": (720, 480)}


@dataclass
class Demo:
    staff: object
    member: object
    teammate: object
    succeeded: Generation
    failed: Generation
    details: dict[str, Generation]  # a result's page in each state a person meets
    board: Board
    preset: SavedPrompt
    batch: Batch


def make_users(password: str) -> tuple:
    User = get_user_model()
    return (
        User.objects.create_user("sam", password=password, is_staff=True),
        User.objects.create_user("olivia", password=password),
        User.objects.create_user("tom", password=password),
    )


def finished(owner, account: ProviderAccount, prompt: str, aspect_ratio: str = "1:1", **extra) -> Generation:
    [job] = start_job(owner, account, MODEL, prompt, aspect_ratio=aspect_ratio, resolution="1K", **extra)
    width, height = SIZES[aspect_ratio]
    store_result(job, render_image(prompt, width, height))
    succeed(job, progress=100)
    return job


def seed(account: ProviderAccount, *, password: str) -> Demo:
    staff, member, teammate = make_users(password)
    Budget.objects.create(user=member, amount=Decimal("10"), period="month")
    ledger.grant(user=teammate, amount=Decimal("5"), reason="a client project", by=staff)

    finished(teammate, account, "a red fox asleep in fresh snow, soft morning light", "3:2")
    rated = finished(teammate, account, "isometric tiny greenhouse full of cacti, pastel colours", "1:1")
    Rating.objects.create(user=member, generation=rated, stars=4)
    Rating.objects.create(user=staff, generation=rated, stars=5)
    library = finished(member, account, "brutalist concrete library at dusk, warm windows", "16:9")
    portrait = finished(member, account, "portrait of a lighthouse keeper, oil painting", "9:16", private=True)
    [failed] = start_job(member, account, MODEL, "a neon city street in the rain", aspect_ratio="16:9", resolution="2K")
    # A provider's long words without a space (a JSON error, a URL): the page must still fit a phone.
    said = '{"error":{"code":"INVALID_ARGUMENT","message":"the_simulator_was_told_to_fail_' + "x" * 120 + '"}}'
    Attempt.objects.create(generation=failed, account=account, model_id=MODEL, outcome=Attempt.Outcome.FAILED,
                           error_kind="generation_failed", message=said)  # fmt: skip
    failed.fail(Status.QUEUED, ProviderError(ErrorKind.GENERATION_FAILED, said), provider_said=True)
    [canceled] = start_job(member, account, MODEL, "a paper boat on a pond", aspect_ratio="9:16")
    pipeline.cancel(canceled)
    variations = start_job(member, account, MODEL, "a ceramic teapot shaped like a whale, studio photo",
                           aspect_ratio="4:3", resolution="1K", count=2)  # fmt: skip
    for index, job in enumerate(variations):
        store_result(job, render_image(f"{job.prompt} #{index + 1}", *SIZES["4:3"]))
        succeed(job, progress=100)
    # A set with one failed variation: a tile that says so.
    origami = start_job(member, account, MODEL, "an origami crane on a desk", aspect_ratio="3:2", count=2)
    store_result(origami[0], render_image(origami[0].prompt, *SIZES["3:2"]))
    succeed(origami[0], progress=100)
    origami[1].fail(Status.QUEUED, ProviderError(ErrorKind.CONTENT_BLOCKED, "blocked by the simulator"))
    [running] = start_job(member, account, MODEL, "a hot air balloon over lavender fields", aspect_ratio="1:1")
    running.advance(Status.QUEUED, Status.SUBMITTING)
    running.advance(Status.SUBMITTING, Status.SUBMITTED)
    running.advance(Status.SUBMITTED, Status.RUNNING, progress=40, due_at=None)
    succeeded = finished(member, account, "a bowl of ramen seen from above, with long chopsticks", "1:1")

    board = Board.objects.create(name="Spring campaign", owner=member)
    board_items.add(board, [rated, library, succeeded], by=member)
    Board.objects.filter(pk=board.pk).update(cover=library)

    preset = SavedPrompt.objects.create(title="Product shot", prompt="a {object} on a seamless white background, "
                                        "softbox lighting, 85 mm lens", tags="product, studio", created_by=member,
                                        choices={"model": "Nano Banana 2", "aspect_ratio": "4:3", "resolution": "2K"},
                                        private=True)  # fmt: skip
    SavedPrompt.objects.create(title="Moody landscape", prompt="a wide misty valley at blue hour, cinematic",
                               tags="landscape", created_by=teammate)  # fmt: skip
    ApiToken.issue(user=member, name="render farm script", scope=ApiToken.Scope.GENERATE)
    ApiToken.issue(user=teammate, name="dashboard", scope=ApiToken.Scope.READ)
    endpoint = WebhookEndpoint.objects.create(
        owner=member, url="https://hooks.example.com/nanoweb", events=list(EVENTS)
    )
    WebhookDelivery.objects.create(endpoint=endpoint, event="job.succeeded", generation=succeeded, body="{}",
                                   attempts=1, delivered_at=timezone.now(), last_status=200, last_answer="ok")  # fmt: skip
    details = {"canceled": canceled, "running": running, "landscape": library, "portrait": portrait}
    batch = create_batch(
        owner=member,
        rows=rows.from_lines("a kite over the dunes\na kite at night"),
        defaults=rows.Defaults("Nano Banana 2"),
    )
    for job in Generation.objects.filter(batch_item__batch=batch).order_by("pk")[:1]:
        store_result(job, render_image(job.prompt, *SIZES["1:1"]))
        succeed(job, progress=100)
    return Demo(
        staff=staff, member=member, teammate=teammate, succeeded=succeeded, failed=failed, details=details,
        board=board, preset=preset, batch=batch,
    )  # fmt: skip


def pages(demo: Demo, who: str) -> dict[str, str]:
    """The pages `who` (nobody, a member, staff) can open, by name; the 403, 404 and 500 pages
    included (the last needs the test URLs, `tests.urls`)."""
    if who == "nobody":
        return {"login": "/login"}
    common = {"studio": "/", "gallery": "/gallery", "gallery-failed": "/gallery?status=failed", "boards": "/boards", "board": demo.board.get_absolute_url(),
              "detail-succeeded": demo.succeeded.get_absolute_url(),
              "detail-failed": demo.failed.get_absolute_url(), "prompts": "/prompts",
              "404": "/generations/999999", "500": "/broken", "zip-empty": "/gallery/download",
              "preset": f"/prompts/{demo.preset.pk}/edit", "tokens": "/account/tokens",
              "webhooks": "/account/webhooks", "batches": "/batches", "batch": demo.batch.get_absolute_url(),
              **{f"detail-{state}": job.get_absolute_url() for state, job in demo.details.items()}}  # fmt: skip
    if who == "member":
        return {**common, "403": "/credits/review"}
    return {
        **common,
        "team": "/team",
        "credits": "/credits/review",
        "person": f"/credits/review/people/{demo.member.pk}",
        "providers": "/providers/health",
        "vendor-models": "/providers/models",
    }


STATUS = {"404": 404, "500": 500, "403": 403, "zip-empty": 400}


def sign_in_as(page, base_url: str, user) -> None:
    """Take the signed-in session of `user`, or none (the sign-in form has its own tests)."""
    page.context.clear_cookies()
    if user is None:
        return
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base_url}])


def visit(page, base_url: str, name: str, path: str) -> None:
    response = page.goto(base_url + path)
    assert response.status == STATUS.get(name, 200), f"{path} answered {response.status}"
