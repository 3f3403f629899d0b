"""The whole pipeline, from the form POST to a stored image, through a real worker process."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from PIL import Image

from nanoweb.providers.base import State
from nanoweb.providers.models import Attempt
from nanoweb.studio import audit
from nanoweb.studio.jobs import finishing, pipeline, sweep
from nanoweb.studio.models import Generation
from tests.conftest import chosen, start_job, wait_for, wait_until_terminal


def post_generation(client, account, model="google/nano-banana-2", **overrides):
    data = {
        "prompt": "a lighthouse at dawn",
        **chosen(account, model),
        "aspect_ratio": "16:9",
        "resolution": "1K",
        "output_format": "png",
        **overrides,
    }
    return client.post(reverse("generate"), data, HTTP_HX_REQUEST="true")


def test_a_submitted_prompt_becomes_a_stored_image_and_thumbnail(worker, owner_client, crun_account, simulator):
    response = post_generation(owner_client, crun_account)
    assert response.status_code == 201
    generation = Generation.objects.get()
    assert f'id="job-{generation.pk}"' in response.text

    wait_until_terminal(generation)

    assert generation.status == Generation.Status.SUCCEEDED, generation.error_detail
    assert generation.provider_task_id in simulator.jobs
    assert generation.submitted_at and generation.finished_at
    assert generation.provider_cost == "6"
    image = generation.images.get()
    original = image.original.read()
    simulated = simulator.jobs[generation.provider_task_id].result_bytes
    assert original == simulated, "the original is kept byte for byte"
    assert image.sha256 == hashlib.sha256(original).hexdigest()
    assert (image.width, image.height, image.mime_type, image.bytes) == (1360, 768, "image/png", len(original))
    image = wait_for(lambda: generation.images.exclude(display="").first(), timeout=20)  # a moment after the original
    with Image.open(io.BytesIO(image.thumbnail.read())) as thumb:
        assert thumb.format == "WEBP" and max(thumb.size) == 512
    with Image.open(io.BytesIO(image.display.read())) as display:
        assert display.format == "WEBP" and display.size == (1360, 768), "never enlarged"

    download = owner_client.get(reverse("image_original", args=[image.pk]) + "?download=1")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == original
    assert "attachment" in download["Content-Disposition"]


def test_a_failed_generation_ends_failed_with_a_readable_reason(worker, owner_client, crun_account):
    post_generation(owner_client, crun_account, prompt="a storm [sim:fail=upstream model crashed]")
    generation = wait_until_terminal(Generation.objects.get())

    assert generation.status == Generation.Status.FAILED
    assert generation.error_kind == "generation_failed"
    assert generation.error_message == (
        "The provider could not generate this image. crun (sim) said: 501: upstream model crashed"
    ), "our sentence, then the provider's own words"
    assert "upstream model crashed" in generation.error_detail
    assert not generation.images.exists()
    card = owner_client.get(reverse("generation_card", args=[generation.pk]))
    assert "The provider could not generate this image. crun (sim) said: 501: upstream model crashed" in card.text


def test_a_rejected_key_fails_the_job_with_an_admin_hint(worker, owner_client, crun_account):
    crun_account.api_key = "wrong"
    crun_account.save()
    post_generation(owner_client, crun_account)
    generation = wait_until_terminal(Generation.objects.get())

    assert generation.status == Generation.Status.FAILED
    assert generation.error_kind == "auth"
    assert "ask an admin" in generation.error_message


def test_a_card_is_watched_by_the_page_channel_until_the_job_ends(owner_client, crun_account, owner, simulator):
    generation = Generation.objects.create(owner=owner, prompt="p", account=crun_account, model="google/nano-banana-2")
    url = reverse("generation_card", args=[generation.pk])

    running = owner_client.get(url)
    assert running.status_code == 200
    assert f'data-live="{generation.pk}.0"' in running.text

    generation.advance(Generation.Status.QUEUED, Generation.Status.FAILED, error_message="The provider is down.")
    finished = owner_client.get(url)
    assert "data-live" not in finished.text
    assert "The provider is down." in finished.text


def test_following_in_process_moves_a_job_from_submitted_to_succeeded(owner, crun_account, simulator):
    """The same steps the worker runs, called directly, to check each transition."""
    generation = Generation.objects.create(
        owner=owner, prompt="steps", account=crun_account, model="google/nano-banana-2", resolution="1K"
    )
    pipeline.submit(Generation.objects.select_related("account").get(pk=generation.pk))
    generation.refresh_from_db()
    assert generation.status == Generation.Status.SUBMITTED

    def followed_until_done():
        pipeline.follow(Generation.objects.select_related("account").get(pk=generation.pk))
        generation.refresh_from_db()
        return generation.status == Generation.Status.FINISHING

    wait_for(followed_until_done, interval=0.05)
    assert generation.results and generation.provider_seconds > 0, "the history learns how long it took"
    finishing.finish(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.SUCCEEDED
    result = simulator.jobs[generation.provider_task_id].result_bytes
    assert generation.images.get().sha256 == hashlib.sha256(result).hexdigest()
    assert generation.poll_count >= 1


def test_a_redelivered_finishing_task_stores_nothing_more(owner, crun_account):
    generation = Generation.objects.create(
        owner=owner, prompt="twice", account=crun_account, model="google/nano-banana"
    )
    pipeline.submit(Generation.objects.select_related("account").get(pk=generation.pk))
    generation.refresh_from_db()
    adapter = crun_account.adapter()
    status = wait_for(lambda: (s := adapter.status(generation.provider_task_id)).state == State.SUCCEEDED and s)
    finishing.hand_over(generation, status, old=Generation.FOLLOWED)
    finishing.hand_over(Generation.objects.get(pk=generation.pk), status, old=Generation.FOLLOWED)

    finishing.finish(generation.pk)
    finishing.finish(generation.pk)

    generation.refresh_from_db()
    assert generation.status == Generation.Status.SUCCEEDED
    assert generation.images.count() == 1


def test_a_create_whose_process_died_is_sent_again_where_the_provider_dedupes_and_ended_elsewhere(owner, make_account):
    crun, apiframe = make_account("crun"), make_account("apiframe")
    cut = [
        start_job(owner, account, model, "cut")[0]
        for account, model in ((crun, "google/nano-banana"), (apiframe, "nano-banana"))
    ]
    lapsed = timezone.now() - timedelta(seconds=1)  # the dead process stopped renewing its hold
    Generation.objects.filter(pk__in=[g.pk for g in cut]).update(
        status=Generation.Status.SUBMITTING, claim="dead", due_at=lapsed
    )
    for generation in cut:  # the create had left: its attempt is recorded before the request
        Attempt.objects.create(generation=generation, account=generation.account, model_id=generation.model)

    for generation in Generation.objects.select_related("account"):
        sweep.recover_held(generation, "new-sweep")

    statuses = dict(Generation.objects.values_list("account__kind", "status"))
    assert statuses == {"apiframe": "queued", "crun": "failed"}, "only a provider that dedupes is asked again"
    crun_job = Generation.objects.get(account=crun)
    assert "not sent again: the provider may have started the job" in crun_job.error_message, "members read why"
    assert audit.ledger_problems() == [], "the ended job was refunded"


def test_a_create_whose_process_died_before_sending_is_sent_again_anywhere(owner, crun_account):
    [job] = start_job(owner, crun_account, "google/nano-banana", "never left")
    lapsed = timezone.now() - timedelta(seconds=1)
    Generation.objects.filter(pk=job.pk).update(status=Generation.Status.SUBMITTING, claim="dead", due_at=lapsed)

    sweep.recover_held(Generation.objects.select_related("account").get(pk=job.pk), "new-sweep")

    job.refresh_from_db()
    assert job.status == Generation.Status.QUEUED and job.claim == "", "no attempt recorded: nothing reached crun"
    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))
    job.refresh_from_db()
    assert job.status == Generation.Status.SUBMITTED and job.provider_task_id


def test_a_create_still_held_by_a_live_process_is_left_alone(owner, crun_account):
    [job] = start_job(owner, crun_account, "google/nano-banana", "slow vendor")
    held_until = timezone.now() + timedelta(seconds=10)
    Generation.objects.filter(pk=job.pk).update(status=Generation.Status.SUBMITTING, claim="alive", due_at=held_until)

    assert sweep.claim_due("new-sweep", limit=10)[0] == []

    job.refresh_from_db()
    assert (job.status, job.claim) == ("submitting", "alive"), "a create in flight is never recovered by another sweep"


def test_the_reconciler_ends_jobs_past_their_deadline(owner, crun_account):
    [too_old] = start_job(owner, crun_account, "google/nano-banana", "old")
    Generation.objects.filter(pk=too_old.pk).update(
        status=Generation.Status.RUNNING, due_at=None, created_at=timezone.now() - timedelta(hours=1)
    )

    assert sweep.reconcile() == {"expired": 1}
    too_old.refresh_from_db()
    assert (too_old.status, too_old.error_kind) == ("failed", "expired")
    assert audit.ledger_problems() == []


def test_slow_synchronous_calls_do_not_stall_other_jobs(worker, owner_client, make_account, simulator):
    """Three Gemini calls of 4 s each are out at once on a 2-process worker; a crun job still
    finishes in about its own latency, because synchronous calls run in the sweep's threads."""
    gemini, crun = make_account("gemini"), make_account("crun")
    for n in range(3):
        post_generation(
            owner_client,
            gemini,
            model="gemini-2.5-flash-image",
            prompt=f"slow {n} [sim:latency=4]",
            resolution="",
            output_format="",
        )
    wait_for(lambda: Generation.objects.filter(account=gemini, status=Generation.Status.RUNNING).count() == 3)
    post_generation(owner_client, crun, prompt="quick [sim:latency=0.3]")

    quick = wait_until_terminal(Generation.objects.get(account=crun))
    assert quick.status == Generation.Status.SUCCEEDED
    assert quick.duration < 3, (
        quick.created_at,
        quick.submitted_at,
        quick.finished_at,
        quick.poll_count,
        quick.attempts,
    )
    assert Generation.objects.filter(account=gemini, status=Generation.Status.RUNNING).count() == 3
    for slow in Generation.objects.filter(account=gemini):
        assert wait_until_terminal(slow).status == Generation.Status.SUCCEEDED
