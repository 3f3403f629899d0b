"""Nothing the team paid for is lost to vendors that are merely slow or busy: slow creates
across a relay, result files that appear late, a busy synchronous account, ambiguous creates,
period boundaries, the catalogue, the admin, the deadline, leftovers, and deleted references."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from nanoweb.credits import ledger
from nanoweb.credits.models import Budget, LedgerEntry, Period
from nanoweb.lib import images
from nanoweb.providers.base import ResultImage, State
from nanoweb.providers.models import Attempt, refresh_catalogue
from nanoweb.studio import audit, history
from nanoweb.studio.jobs import finishing, pipeline, sweep
from nanoweb.studio.models import Generation, Lease
from tests.conftest import start_job, store_result, succeed, wait_for, wait_until_terminal
from tests.test_references import png, upload

Status = Generation.Status


def provider_done(job: Generation):
    """Submit the job and wait until the provider says it is done; its final status."""
    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))
    job.refresh_from_db()
    adapter = job.account.adapter()
    return wait_for(lambda: (s := adapter.status(job.provider_task_id)).state == State.SUCCEEDED and s)


# 1. A slow create across a relay


def test_a_create_slower_than_the_sweep_lease_survives_a_relay(start_worker, owner, make_account, simulator):
    """crun cannot dedupe a repeated create, so a job taken for interrupted would be failed
    (and refunded) while the vendor runs and bills it. The create takes 7 s; the sweep relays
    every second and its lease lasts 5 s."""
    crun = make_account("crun", faults="+slow_create=7")
    [job] = start_job(owner, crun, "google/nano-banana", "a slow vendor")
    start_worker(SWEEP_SECONDS="1")

    job = wait_until_terminal(job, timeout=60)

    assert job.status == Status.SUCCEEDED, job.error_detail
    assert list(job.attempt_log.values_list("outcome", flat=True)) == [Attempt.Outcome.SUCCEEDED]
    assert audit.ledger_problems() == []


def cut_off_create(owner, account, model: str, prompt: str) -> Generation:
    """A job whose create reached the vendor, but whose process died before the answer: the
    vendor runs the task (and calls back when it ends); the job holds no task id, its hold lapsed."""
    [job] = start_job(owner, account, model, prompt)
    Attempt.objects.create(generation=job, account=account, model_id=model)
    lapsed = timezone.now() - timedelta(seconds=1)
    Generation.objects.filter(pk=job.pk).update(status=Status.SUBMITTING, claim="dead", due_at=lapsed, attempts=1)
    job = Generation.objects.select_related("account").get(pk=job.pk)
    account.adapter().create(pipeline.provider_request(job))
    return job


def test_a_create_cut_off_at_a_vendor_that_calls_back_is_adopted_from_its_callback(
    live_server, owner, owner_client, make_account, simulator, settings
):
    """crun and defapi cannot dedupe a repeated create, so a create whose process was killed is
    never sent again: the job waits for the vendor's callback, which names the task, and follows it."""
    settings.PUBLIC_BASE_URL = live_server.url
    simulator.latency = 1.5
    crun, defapi = make_account("crun"), make_account("defapi")
    jobs = [cut_off_create(owner, crun, "google/nano-banana", "cut off at crun"),
            cut_off_create(owner, defapi, "google/gempix2", "cut off at defapi")]  # fmt: skip

    for job in jobs:
        sweep.recover_held(job, "new-sweep")
        job.refresh_from_db()
        assert job.status == Status.SUBMITTING and job.claim == ""
        assert job.due_at == job.created_at + timedelta(seconds=settings.JOB_DEADLINE_SECONDS), "back at its deadline"
        line = f"Interrupted while sending to {job.account.name}: waiting for it to report the job, until "
        assert job.waiting_line.startswith(line) and job.retry_in == 0
    assert "waiting for it to report the job" in owner_client.get("/").content.decode()

    for job in jobs:
        wait_for(lambda job=job: Generation.objects.get(pk=job.pk).status == Status.SUBMITTED, timeout=15)
        pipeline.follow(Generation.objects.select_related("account").get(pk=job.pk))
        finishing.finish(job.pk)
        job.refresh_from_db()
        assert job.status == Status.SUCCEEDED, job.error_detail
        assert job.provider_task_id in simulator.jobs and job.images.count() == 1
        assert list(job.attempt_log.values_list("outcome", flat=True)) == [Attempt.Outcome.SUCCEEDED]
    sent = [task for task in simulator.jobs.values() if task.prompt.startswith("cut off at")]
    assert len(sent) == 2, "nothing was sent twice"
    assert audit.ledger_problems() == [] and ledger.standing(owner).spent == sum(job.price for job in jobs)


def test_a_create_is_recorded_as_sent_only_once_the_wait_for_the_rate_limit_is_over(owner, crun_account, monkeypatch):
    """A process killed while it waits for the account's rate limit has sent nothing: with no
    attempt recorded, the job is sent again, even where the vendor cannot dedupe."""
    [job] = start_job(owner, crun_account, "google/nano-banana", "waits its turn")
    recorded_while_waiting = []
    monkeypatch.setattr(
        pipeline.limiter, "acquire", lambda *args: recorded_while_waiting.append(job.attempt_log.count())
    )

    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))

    assert recorded_while_waiting == [0]
    assert list(job.attempt_log.values_list("outcome", flat=True)) == [Attempt.Outcome.ACCEPTED]


def test_a_callback_naming_a_task_we_cannot_find_or_another_jobs_adopts_nothing(client, owner, crun_account, settings):
    settings.PUBLIC_BASE_URL = "https://studio.example"
    job = cut_off_create(owner, crun_account, "google/nano-banana", "cut off, never reported")
    sweep.recover_held(job, "new-sweep")
    [other] = start_job(owner, crun_account, "google/nano-banana", "another")
    pipeline.submit(Generation.objects.select_related("account").get(pk=other.pk))
    other.refresh_from_db()
    hook = reverse("provider_callback", args=[job.callback_token])

    for task in ("no-such-task", other.provider_task_id, ""):
        response = client.post(hook, json.dumps({"task_id": task, "status": "success"}), "application/json")
        assert response.status_code == 200
        job.refresh_from_db()
        assert (job.status, job.provider_task_id) == (Status.SUBMITTING, ""), task

    Generation.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.JOB_DEADLINE_SECONDS + 1), due_at=timezone.now()
    )
    sweep.claim_due("a-later-sweep", limit=10)
    job.refresh_from_db()
    assert (job.status, job.error_kind) == (Status.FAILED, "expired"), "the deadline ends the wait, refunded"
    assert audit.ledger_problems() == [] and ledger.standing(owner).spent == other.price


# 2. A result file that is not there yet


def test_a_result_file_that_answers_404_at_first_is_fetched_again_and_the_card_says_so(
    owner, owner_client, crun_account, simulator
):
    [job] = start_job(owner, crun_account, "google/nano-banana", "late file [sim:late_file=2]")
    finishing.hand_over(job, provider_done(job), old=Generation.FOLLOWED)

    finishing.finish(job.pk)
    job.refresh_from_db()
    assert job.status == Status.FINISHING, job.error_detail
    assert job.waiting_line.startswith("Saving: the provider's file is not ready yet; trying again in ")
    assert "not ready yet" in owner_client.get("/").content.decode()
    assert ledger.standing(owner).spent == job.price, "still held, neither charged nor refunded"

    while job.status == Status.FINISHING:
        time.sleep(max(0.0, (job.due_at - timezone.now()).total_seconds()))
        finishing.finish(job.pk)  # the task the sweep enqueues when the retry is due
        job.refresh_from_db()

    assert job.status == Status.SUCCEEDED
    assert job.images.count() == 1 and not job.waiting_line
    assert audit.ledger_problems() == []


def test_a_result_file_still_missing_after_the_window_fails_naming_the_last_answer(
    owner, crun_account, simulator, settings
):
    settings.RESULT_FETCH_SECONDS = 2
    [job] = start_job(owner, crun_account, "google/nano-banana", "never there [sim:result=404]")
    finishing.hand_over(job, provider_done(job), old=Generation.FOLLOWED)

    finishing.finish(job.pk)
    job.refresh_from_db()
    while job.status == Status.FINISHING:
        time.sleep(max(0.0, (job.due_at - timezone.now()).total_seconds()))
        finishing.finish(job.pk)
        job.refresh_from_db()

    assert (job.status, job.error_kind) == (Status.FAILED, "bad_result")
    assert "not there after 2 s: HTTP 404" in job.error_detail
    assert ledger.standing(owner).spent == 0 and audit.ledger_problems() == []


def test_a_broken_result_file_still_fails_at_once(owner, crun_account, simulator):
    [job] = start_job(owner, crun_account, "google/nano-banana", "broken [sim:result=truncated]")
    finishing.hand_over(job, provider_done(job), old=Generation.FOLLOWED)

    finishing.finish(job.pk)

    job.refresh_from_db()
    assert (job.status, job.error_kind) == (Status.FAILED, "bad_result")


# 3. A busy synchronous account


def test_a_busy_synchronous_account_never_delays_another_accounts_jobs(
    transactional_db, owner, make_account, simulator, settings
):
    """Twelve Gemini calls of 4 s each, with four step threads: the crun job submitted after
    them is submitted and read as if they were not there. Gemini keeps to its max_in_flight."""
    settings.SWEEP_CONCURRENCY = 4
    settings.SWEEP_SECONDS = 60
    gemini, crun = make_account("gemini"), make_account("crun")
    gemini.max_in_flight = 6
    gemini.save()
    [start_job(owner, gemini, "gemini-3.1-flash-image", f"slow {n} [sim:latency=3]") for n in range(12)]
    token = "test-sweep"
    Lease.objects.update_or_create(
        name=pipeline.SWEEP, defaults={"holder": token, "expires_at": timezone.now() + timedelta(seconds=30)}
    )
    sweeping = threading.Thread(target=sweep.sweep, args=(token,))
    sweeping.start()
    try:
        wait_for(lambda: Generation.objects.filter(account=gemini, status=Status.RUNNING).count() == 6)
        began = time.monotonic()
        [quick] = start_job(owner, crun, "google/nano-banana", "quick")
        wait_for(lambda: Generation.objects.filter(pk=quick.pk, status=Status.FINISHING).exists(), timeout=10)
        took = time.monotonic() - began
        running = Generation.objects.filter(account=gemini, status=Status.RUNNING).count()
    finally:
        Lease.objects.filter(name=pipeline.SWEEP).update(holder="stopped")  # the sweep ends at its next renewal
        sweeping.join(timeout=30)
        for job in Generation.objects.filter(status=Status.QUEUED):
            pipeline.cancel(job)
        wait_for(lambda: not Generation.objects.filter(status=Status.RUNNING).exists())  # the calls out end
    assert took < 2.5, f"the crun job waited behind the Gemini calls ({took:.1f} s; the provider takes 0.4 s)"
    assert running <= 6, "Gemini's calls keep within the account's max_in_flight"


# 4. An ambiguous create never moves


def test_after_an_ambiguous_create_a_clear_refusal_never_moves_the_job_to_another_account(owner, make_account):
    """apiframe dedupes by our key, so a 500 after sending is tried again there; when that try
    is refused outright (503 with no near retry), another account would run and bill the job a
    second time while apiframe may still run the first."""
    apiframe = make_account("apiframe", faults="+errors=500,401")
    make_account("crun")  # serves Nano Banana 2 too
    [job] = start_job(owner, apiframe, "nano-banana", "ambiguous", automatic=True)

    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))
    job.refresh_from_db()
    assert (job.status, job.account) == (Status.QUEUED, apiframe), "retried where it may be running"
    Generation.objects.filter(pk=job.pk).update(due_at=timezone.now())
    pipeline.submit(Generation.objects.select_related("account").get(pk=job.pk))

    job.refresh_from_db()
    assert (job.status, job.account) == (Status.FAILED, apiframe)
    assert "not moved to another account" in job.error_detail
    assert set(job.attempt_log.values_list("account", flat=True)) == {apiframe.pk}
    assert ledger.standing(owner).spent == 0 and audit.ledger_problems() == []


# 5. Budgets at a period boundary


def test_a_release_after_midnight_counts_in_the_period_of_its_reservation(owner, crun_account):
    Budget.objects.create(user=owner, amount=Decimal("20"), period=Period.MONTH)
    last_month = ledger.period_start(Period.MONTH) - timedelta(minutes=2)
    [job] = start_job(owner, crun_account, "google/nano-banana", "late night")
    Generation.objects.filter(pk=job.pk).update(created_at=last_month)
    LedgerEntry.objects.filter(generation=job).update(created_at=last_month)
    Generation.objects.filter(pk=job.pk).update(price=Decimal("10"))
    LedgerEntry.objects.filter(generation=job).update(amount=Decimal("10"))

    pipeline.cancel(Generation.objects.get(pk=job.pk))  # released now, in the new month

    assert ledger.standing(owner).left == Decimal("20"), "not 30: last month's refund is last month's"
    assert audit.ledger_problems() == []


# 6. An incomplete catalogue row


def test_a_catalogue_row_without_a_price_is_not_offered_and_staff_see_why(owner, owner_client, make_account, staff):
    gemini = make_account("gemini")
    [done] = start_job(owner, gemini, "gemini-3.1-flash-image", "before", resolution="4K")
    row = gemini.catalogue.get(model_id="gemini-3.1-flash-image")
    row.prices = {size: price for size, price in row.prices.items() if size != "4K"}
    row.resolutions = ["1K", "2K"]
    row.save()
    row.resolutions = ["1K", "2K", "4K"]
    type(row).objects.filter(pk=row.pk).update(resolutions=row.resolutions)  # as an old refresh left it

    assert "price is missing for: 4K" in row.incomplete
    assert owner_client.get("/").status_code == 200
    assert owner_client.get("/", {"model": row.name, "resolution": "4K"}).status_code == 200
    refresh_catalogue(gemini)
    row.refresh_from_db()
    assert row.incomplete == "" and "4K" in row.prices, "the refresh brings the vendor's price with the resolution"
    assert done.pk


def test_a_catalogue_refresh_validates_every_row(make_account):
    gemini = make_account("gemini")
    row = gemini.catalogue.get(model_id="gemini-3.1-flash-image")
    type(row).objects.filter(pk=row.pk).update(prices={"1K": "not money"})

    refresh_catalogue(gemini)

    row.refresh_from_db()
    assert row.prices == {"1K": "not money"} and row.incomplete, "left as it was, for staff to see"


# 7. The admin cannot undo a transition


def test_the_admin_saves_only_what_staff_may_change(admin_client, owner, crun_account):
    [job] = start_job(owner, crun_account, "google/nano-banana", "admin")
    page = admin_client.get(f"/admin/studio/generation/{job.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert list(form.fields) == ["private"]

    admin_client.post(
        f"/admin/studio/generation/{job.pk}/change/",
        {"private": "on", "status": "succeeded", "price": "0", "attempt_log-TOTAL_FORMS": "0",
         "attempt_log-INITIAL_FORMS": "0", "images-TOTAL_FORMS": "0", "images-INITIAL_FORMS": "0"},
    )  # fmt: skip

    job.refresh_from_db()
    assert (job.private, job.status, job.price) == (True, Status.QUEUED, Decimal("0.039"))


# 8. Finishing is never expired


def test_the_deadline_never_throws_away_a_job_the_provider_finished(owner, crun_account, simulator, settings):
    [job] = start_job(owner, crun_account, "google/nano-banana", "old but done")
    finishing.hand_over(job, provider_done(job), old=Generation.FOLLOWED)
    Generation.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=1))

    assert sweep.reconcile() == {"expired": 0}
    finishing.finish(job.pk)

    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and audit.ledger_problems() == []


# 9. Leftovers


def test_a_failed_finishing_leaves_no_files_behind(owner, make_account, simulator):
    gemini = make_account("gemini")
    [job] = start_job(owner, gemini, "gemini-3.1-flash-image", "two results")
    kept = finishing.keep(ResultImage(data=png()))["file"]
    Generation.objects.filter(pk=job.pk).update(
        status=Status.FINISHING, results=[{"file": kept}, {"url": "http://127.0.0.1:1/refused.png"}]
    )
    Generation.objects.filter(pk=job.pk).update(saving_since=timezone.now() - timedelta(hours=1))

    finishing.finish(job.pk)

    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert not default_storage.exists(kept), "the kept bytes are gone"
    assert finishing_files() == [], "and so is the first result's original"


def test_a_canceled_finishing_job_leaves_no_kept_bytes(owner, make_account, django_capture_on_commit_callbacks):
    gemini = make_account("gemini")
    [job] = start_job(owner, gemini, "gemini-3.1-flash-image", "canceled while saving")
    kept = finishing.keep(ResultImage(data=png()))["file"]
    Generation.objects.filter(pk=job.pk).update(status=Status.FINISHING, results=[{"file": kept}])

    with django_capture_on_commit_callbacks(execute=True):
        pipeline.cancel(Generation.objects.get(pk=job.pk))

    assert not default_storage.exists(kept)


def finishing_files() -> list[str]:
    return [name for folder in ("originals", "incoming") for name in orphan_names(folder)]


def orphan_names(folder: str) -> list[str]:
    from nanoweb.studio.management.commands.orphan_files import stored_files

    return list(stored_files(folder))


def test_staff_list_and_remove_files_no_row_points_to(owner, make_account, capsys):
    [job] = start_job(
        owner, make_account("gemini"), "gemini-2.5-flash-image", "kept", reference_files=[images.check(png())]
    )
    stray = default_storage.save("originals/2026/01/stray.png", upload("stray.png", png()))

    call_command("orphan_files", "--older-than", "0")
    assert capsys.readouterr().out.split() == [stray]
    call_command("orphan_files", "--older-than", "0", "--delete")

    assert not default_storage.exists(stray)
    assert default_storage.exists(job.reference_links.get().reference.file.name), "what a row points to stays"


# 10. Try again with deleted references


def test_try_again_with_a_deleted_reference_is_refused_at_the_click_and_charges_nothing(
    owner, owner_client, make_account
):
    gemini = make_account("gemini")
    [source] = start_job(owner, gemini, "gemini-2.5-flash-image", "source")
    succeed(source)
    image = store_result(source, png())
    [edit] = start_job(owner, gemini, "gemini-2.5-flash-image", "edit", reference_results=[image])
    edit.fail(Generation.ACTIVE, pipeline.ProviderError(pipeline.ErrorKind.GENERATION_FAILED, "no"))
    history.delete(Generation.objects.get(pk=source.pk))
    spent = ledger.standing(owner).spent

    response = owner_client.post(f"/generations/{edit.pk}/again")

    assert response.status_code == 409
    assert "reference image of this job has been deleted" in response.content.decode()
    assert Generation.objects.count() == 2 and ledger.standing(owner).spent == spent


def test_staff_set_how_many_jobs_an_account_may_have_out_at_once(make_account):
    from nanoweb.providers.admin import ProviderAccountForm

    gemini = make_account("gemini")
    assert gemini.in_flight_limit == 16, "Gemini's default"
    data = {**ProviderAccountForm(instance=gemini).initial, "max_in_flight": "4", "api_key": ""}
    form = ProviderAccountForm({k: v for k, v in data.items() if v is not None}, instance=gemini)
    assert form.is_valid(), form.errors
    form.save()

    gemini.refresh_from_db()
    assert gemini.in_flight_limit == 4
    assert not ProviderAccountForm({**data, "max_in_flight": "0"}, instance=gemini).is_valid()


def test_a_finishing_task_killed_before_saving_its_row_leaves_no_file_beside_the_next_ones(owner, crun_account):
    [job] = start_job(owner, crun_account, "google/nano-banana", "killed while storing")
    left = finishing.store_image(job, 0, png())  # written, and its task died before the row was saved

    again = finishing.store_image(job, 0, png())

    assert again.original.name == left.original.name, "the same name: the leftover is replaced, not kept beside it"
    assert default_storage.exists(again.original.name)
