"""Every provider against the simulator over real HTTP: generation, wire format, errors, faults."""

from __future__ import annotations

import hashlib
import hmac
import io
import json

import pytest
from PIL import Image

from nanoweb.providers.base import ErrorKind, GenerationRequest, InlineImage, ProviderError, State
from nanoweb.studio.jobs import finishing, pipeline
from nanoweb.studio.models import Generation
from tests.conftest import wait_for

pytestmark = pytest.mark.portable

# kind, model, the options the form would send, the expected image size and MIME type
HAPPY_PATHS = [
    ("crun", "google/nano-banana-2", {"aspect_ratio": "21:9", "resolution": "2K", "output_format": "jpg"}, (3136, 1344), "image/jpeg"),
    ("crun", "google/nano-banana-2-v2", {"aspect_ratio": "9:16", "resolution": "1K"}, (768, 1360), "image/png"),
    ("crun", "google/nano-banana", {"aspect_ratio": "4:3", "output_format": "jpg"}, (1184, 880), "image/jpeg"),
    ("crun", "google/nano-banana-v2", {"aspect_ratio": "1:1"}, (1024, 1024), "image/png"),
    ("nanophoto", "nano-banana-2", {"aspect_ratio": "3:4", "resolution": "1K", "google_search": True}, (880, 1184), "image/png"),
    ("apiframe", "nano-banana-2", {"resolution": "512", "output_format": "webp"}, (512, 512), "image/webp"),
    ("apiframe", "nano-banana", {"output_format": "png"}, (1024, 1024), "image/png"),
    ("defapi", "google/gempix2", {}, (1024, 1024), "image/png"),
    ("defapi", "google/gemini-2.5-flash-image", {}, (1024, 1024), "image/png"),
    ("gemini", "gemini-3.1-flash-image", {"aspect_ratio": "16:9", "resolution": "512"}, (688, 384), "image/png"),
    ("gemini", "gemini-2.5-flash-image", {"aspect_ratio": "3:2"}, (1248, 832), "image/png"),
]  # fmt: skip


def new_generation(owner, account, model, prompt="a quiet harbour", **options) -> Generation:
    return Generation.objects.create(owner=owner, prompt=prompt, account=account, model=model, **options)


def run_to_end(generation: Generation) -> Generation:
    """What the worker does, in this process: submit, then follow until the job is final."""
    pipeline.submit(Generation.objects.select_related("account").get(pk=generation.pk))

    def final():
        generation.refresh_from_db()
        if generation.status == Generation.Status.FINISHING:
            finishing.finish(generation.pk)
        elif not generation.is_terminal:
            pipeline.follow(Generation.objects.select_related("account").get(pk=generation.pk))
        generation.refresh_from_db()
        return generation.is_terminal

    wait_for(final, timeout=20, interval=0.05)
    return generation


@pytest.mark.parametrize("kind, model, options, size, mime", HAPPY_PATHS, ids=[f"{p[0]}:{p[1]}" for p in HAPPY_PATHS])
def test_each_provider_and_model_generates_a_stored_image(owner, make_account, kind, model, options, size, mime):
    generation = run_to_end(new_generation(owner, make_account(kind), model, **options))

    assert generation.status == Generation.Status.SUCCEEDED, generation.error_detail
    image = generation.images.get()
    assert ((image.width, image.height), image.mime_type) == (size, mime)
    with Image.open(io.BytesIO(image.original.read())) as stored:
        assert stored.size == size


# --- the bytes on the wire --------------------------------------------------------


def request_to(simulator, path_end: str):
    return next(r for r in reversed(simulator.requests) if r.path.endswith(path_end))


def test_nanophoto_wire_format(make_account, simulator):
    adapter = make_account("nanophoto").adapter()
    task = adapter.create(
        GenerationRequest("a cat", "nano-banana-2", aspect_ratio="4:3", resolution="2K", google_search=True,
                          reference_urls=("https://cdn.example/a.png",))
    )  # fmt: skip
    sent = request_to(simulator, "/api/nano-banana-2/generate")
    assert (sent.method, sent.path) == ("POST", "/nanophoto/api/nano-banana-2/generate")
    assert sent.headers["authorization"] == "Bearer sim-key"
    assert sent.json() == {"prompt": "a cat", "mode": "edit", "googleSearch": True, "aspectRatio": "4:3",
                           "imageQuality": "2K", "inputImageUrls": ["https://cdn.example/a.png"]}  # fmt: skip

    status = adapter.status(task.task_id)
    sent = request_to(simulator, "/check-status")
    assert (sent.method, sent.json()) == ("POST", {"generationId": task.task_id})
    assert status.state in (State.QUEUED, State.RUNNING)


def test_apiframe_wire_format_and_idempotency(make_account, simulator):
    adapter = make_account("apiframe").adapter()
    request = GenerationRequest(
        "a cat", "nano-banana-2", resolution="4K", output_format="png", google_search=True,
        reference_urls=("https://cdn.example/a.png",), callback_url="https://studio.example/hooks/t",
        idempotency_key="7f0c4c1e-job",
    )  # fmt: skip
    first = adapter.create(request)
    sent = request_to(simulator, "/v2/images/generate")
    assert (sent.method, sent.path) == ("POST", "/apiframe/v2/images/generate")
    assert sent.headers["x-api-key"] == "sim-key"
    assert sent.headers["idempotency-key"] == "7f0c4c1e-job"
    assert sent.json() == {
        "prompt": "a cat", "model": "nano-banana-2",
        "nanoBananaParams": {"resolution": "4K", "output_format": "png", "google_search": True,
                             "image_input": "https://cdn.example/a.png"},
        "webhookUrl": "https://studio.example/hooks/t", "webhook_url": "https://studio.example/hooks/t",
        "webhookEvents": ["completed", "failed"],
    }  # fmt: skip
    assert adapter.create(request).task_id == first.task_id, "the same idempotency key starts no second job"

    adapter.status(first.task_id)
    assert request_to(simulator, first.task_id).path == f"/apiframe/v2/jobs/{first.task_id}"


def test_defapi_wire_format(make_account, simulator):
    adapter = make_account("defapi").adapter()
    task = adapter.create(
        GenerationRequest("basket", "google/gempix2", reference_urls=("https://a/1.png", "https://a/2.png"),
                          callback_url="https://studio.example/hooks/t")
    )  # fmt: skip
    sent = request_to(simulator, "/api/image/gen")
    assert (sent.method, sent.path, sent.headers["authorization"]) == (
        "POST",
        "/defapi/api/image/gen",
        "Bearer sim-key",
    )
    assert sent.json() == {"model": "google/gempix2", "prompt": "basket",
                           "images": ["https://a/1.png", "https://a/2.png"], "callback_url": "https://studio.example/hooks/t"}  # fmt: skip
    adapter.status(task.task_id)
    sent = request_to(simulator, "/api/task/query")
    assert (sent.method, sent.query) == ("GET", {"task_id": task.task_id})


def test_gemini_wire_format_with_inline_references(make_account, simulator):
    adapter = make_account("gemini").adapter()
    reference = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(reference, "PNG")
    result = adapter.create(
        GenerationRequest("make it blue", "gemini-3.1-flash-image", aspect_ratio="4:5", resolution="1K",
                          google_search=True, reference_images=(InlineImage(reference.getvalue(), "image/png"),))
    )  # fmt: skip
    sent = request_to(simulator, ":generateContent")
    assert sent.path == "/gemini/v1beta/models/gemini-3.1-flash-image:generateContent"
    assert sent.headers["x-goog-api-key"] == "sim-key"
    body = sent.json()
    assert body["contents"][0]["parts"][0] == {"text": "make it blue"}
    assert body["contents"][0]["parts"][1]["inline_data"]["mime_type"] == "image/png"
    assert body["generationConfig"] == {
        "responseModalities": ["IMAGE"],
        "imageConfig": {"aspectRatio": "4:5", "imageSize": "1K"},
    }
    assert body["tools"] == [{"google_search": {}}]
    assert result.status.state == State.SUCCEEDED and result.status.images[0].data.startswith(b"\x89PNG")


# --- every documented error, mapped ----------------------------------------------

ERRORS = [
    ("crun", "401", ErrorKind.AUTH, False), ("crun", "402", ErrorKind.OUT_OF_CREDIT, False),
    ("crun", "404", ErrorKind.NOT_FOUND, False), ("crun", "422", ErrorKind.INVALID_INPUT, False),
    ("crun", "429", ErrorKind.RATE_LIMITED, True), ("crun", "455", ErrorKind.UNAVAILABLE, True),
    ("crun", "500", ErrorKind.UNAVAILABLE, True), ("crun", "501", ErrorKind.GENERATION_FAILED, False),
    ("crun", "505", ErrorKind.UNAVAILABLE, False),
    ("nanophoto", "LOGIN_REQUIRED", ErrorKind.AUTH, False), ("nanophoto", "FORBIDDEN", ErrorKind.AUTH, False),
    ("nanophoto", "NOT_FOUND", ErrorKind.NOT_FOUND, False),
    ("nanophoto", "INSUFFICIENT_CREDITS", ErrorKind.OUT_OF_CREDIT, False),
    ("nanophoto", "API_KEY_RATE_LIMIT_EXCEEDED", ErrorKind.RATE_LIMITED, True),
    ("nanophoto", "INVALID_PROMPT", ErrorKind.INVALID_INPUT, False),
    ("nanophoto", "MISSING_INPUT_IMAGE", ErrorKind.INVALID_INPUT, False),
    ("nanophoto", "TOO_MANY_IMAGES", ErrorKind.INVALID_INPUT, False),
    ("nanophoto", "IMAGE_URLS_REQUIRED", ErrorKind.INVALID_INPUT, False),
    ("nanophoto", "CREDIT_RESERVATION_FAILED", ErrorKind.UNAVAILABLE, True),
    ("nanophoto", "GENERATION_FAILED", ErrorKind.GENERATION_FAILED, False),
    ("apiframe", "400", ErrorKind.INVALID_INPUT, False), ("apiframe", "401", ErrorKind.AUTH, False),
    ("apiframe", "402", ErrorKind.OUT_OF_CREDIT, False), ("apiframe", "404", ErrorKind.NOT_FOUND, False),
    ("apiframe", "429", ErrorKind.RATE_LIMITED, True), ("apiframe", "500", ErrorKind.UNAVAILABLE, True),
    ("apiframe", "503", ErrorKind.UNAVAILABLE, True),
    ("defapi", "400", ErrorKind.INVALID_INPUT, False), ("defapi", "401", ErrorKind.AUTH, False),
    ("defapi", "404", ErrorKind.NOT_FOUND, False), ("defapi", "500", ErrorKind.UNAVAILABLE, True),
    ("gemini", "400", ErrorKind.INVALID_INPUT, False), ("gemini", "403", ErrorKind.AUTH, False),
    ("gemini", "404", ErrorKind.NOT_FOUND, False), ("gemini", "429", ErrorKind.RATE_LIMITED, True),
    ("gemini", "500", ErrorKind.UNAVAILABLE, True), ("gemini", "503", ErrorKind.UNAVAILABLE, True),
    ("gemini", "504", ErrorKind.UNAVAILABLE, True),
]  # fmt: skip
MODEL = {"crun": "google/nano-banana-2", "nanophoto": "nano-banana-2", "apiframe": "nano-banana-2",
         "defapi": "google/gempix2", "gemini": "gemini-3.1-flash-image"}  # fmt: skip


@pytest.mark.parametrize("kind, code, expected, retryable", ERRORS, ids=[f"{e[0]}:{e[1]}" for e in ERRORS])
def test_every_documented_error_maps_to_the_taxonomy(make_account, kind, code, expected, retryable):
    adapter = make_account(kind, faults=f"+error={code}").adapter()
    with pytest.raises(ProviderError) as raised:
        adapter.create(GenerationRequest("p", MODEL[kind]))
    assert (raised.value.kind, raised.value.retryable) == (expected, retryable)
    assert raised.value.message  # a sentence a team member understands


@pytest.mark.parametrize("kind", sorted(MODEL))
def test_a_wrong_key_is_an_authentication_error(make_account, kind):
    account = make_account(kind)
    account.api_key = "not-the-key"
    with pytest.raises(ProviderError) as raised:
        account.adapter().create(GenerationRequest("p", MODEL[kind]))
    assert raised.value.kind == ErrorKind.AUTH
    assert "ask an admin" in raised.value.message


@pytest.mark.parametrize("kind", sorted(MODEL))
def test_a_rate_limit_passes_on_retry_after(make_account, kind):
    code = "API_KEY_RATE_LIMIT_EXCEEDED" if kind == "nanophoto" else "429"
    adapter = make_account(kind, faults=f"+error={code}+retry_after=7").adapter()
    with pytest.raises(ProviderError) as raised:
        adapter.create(GenerationRequest("p", MODEL[kind]))
    assert (raised.value.kind, raised.value.retry_after) == (ErrorKind.RATE_LIMITED, 7.0)


@pytest.mark.parametrize("kind", sorted(MODEL))
def test_an_html_error_page_is_a_retryable_outage(make_account, kind):
    with pytest.raises(ProviderError) as raised:
        make_account(kind, faults="+html").adapter().create(GenerationRequest("p", MODEL[kind]))
    assert raised.value.kind == ErrorKind.UNAVAILABLE and raised.value.retryable
    assert "502" in raised.value.detail


def test_a_slow_provider_times_out_as_a_retryable_outage(make_account, settings):
    settings.OUTBOUND_TIMEOUT = 0.3
    with pytest.raises(ProviderError) as raised:
        make_account("crun", faults="+slow=1").adapter().create(GenerationRequest("p", "google/nano-banana"))
    assert raised.value.kind == ErrorKind.UNAVAILABLE and "timed out" in raised.value.detail


# --- faults that end a job, seen as a member sees them ----------------------------

JOB_FAULTS = [
    ("crun", "[sim:result=404]", ErrorKind.BAD_RESULT),
    ("nanophoto", "[sim:result=truncated]", ErrorKind.BAD_RESULT),
    ("apiframe", "[sim:result=notimage]", ErrorKind.BAD_RESULT),
    ("crun", "[sim:missing=result]", ErrorKind.MALFORMED),
    ("nanophoto", "[sim:missing=status]", ErrorKind.MALFORMED),
    ("apiframe", "[sim:fail=model overloaded]", ErrorKind.GENERATION_FAILED),
    ("defapi", "[sim:fail=policy violation]", ErrorKind.GENERATION_FAILED),
    ("gemini", "[sim:block=SAFETY]", ErrorKind.CONTENT_BLOCKED),
    ("gemini", "[sim:finish=IMAGE_SAFETY]", ErrorKind.CONTENT_BLOCKED),
    ("gemini", "[sim:finish=IMAGE_PROHIBITED_CONTENT]", ErrorKind.CONTENT_BLOCKED),
    ("gemini", "[sim:finish=IMAGE_RECITATION]", ErrorKind.CONTENT_BLOCKED),
    ("gemini", "[sim:finish=IMAGE_OTHER]", ErrorKind.CONTENT_BLOCKED),
    ("gemini", "[sim:finish=NO_IMAGE]", ErrorKind.NO_IMAGE),
    ("gemini", "[sim:finish=STOP]", ErrorKind.NO_IMAGE),
    ("crun", "[sim:status_error=501]", ErrorKind.GENERATION_FAILED),
    ("apiframe", "[sim:status_error=401]", ErrorKind.AUTH),
]


@pytest.mark.parametrize("kind, directive, expected", JOB_FAULTS, ids=[f"{f[0]}:{f[1]}" for f in JOB_FAULTS])
def test_faults_end_the_job_failed_with_the_right_reason(owner, make_account, settings, kind, directive, expected):
    settings.RESULT_FETCH_SECONDS = 0  # a file that never comes fails at once (test_nothing_lost: the window)
    generation = run_to_end(new_generation(owner, make_account(kind), MODEL[kind], prompt=f"a harbour {directive}"))

    assert generation.status == Generation.Status.FAILED
    assert generation.error_kind == expected
    assert generation.error_message and not generation.images.exists()


def test_gemini_keeps_the_finish_message_for_staff_and_skips_thought_images(owner, make_account, simulator):
    gemini = make_account("gemini")
    blocked = run_to_end(new_generation(owner, gemini, MODEL["gemini"], prompt="x [sim:finish=IMAGE_OTHER]"))
    assert "Unable to show the generated image (IMAGE_OTHER)" in blocked.error_detail

    made = run_to_end(new_generation(owner, gemini, MODEL["gemini"], prompt="a final image"))
    sent = next(job for job in simulator.jobs.values() if job.prompt == "a final image")
    assert made.images.get().sha256 == hashlib.sha256(sent.result_bytes).hexdigest(), "not the thought draft"


def test_gemini_answers_a_shut_down_model_id_with_not_found(make_account):
    with pytest.raises(ProviderError) as raised:
        make_account("gemini").adapter().create(GenerationRequest("p", "gemini-3.1-flash-image-preview"))
    assert raised.value.kind == ErrorKind.NOT_FOUND and "is not found for API version v1beta" in raised.value.detail


def test_an_oversized_result_is_refused(owner, make_account, settings):
    settings.MAX_RESULT_BYTES = 8 * 1024 * 1024
    generation = run_to_end(new_generation(owner, make_account("crun"), MODEL["crun"], prompt="big [sim:result=huge]"))
    assert (generation.status, generation.error_kind) == (Generation.Status.FAILED, ErrorKind.BAD_RESULT)
    assert "limit" in generation.error_detail


def test_transient_status_errors_are_retried_until_the_job_succeeds(owner, make_account):
    generation = new_generation(owner, make_account("crun"), MODEL["crun"], prompt="x [sim:status_error=455x2]")
    generation = run_to_end(generation)
    assert generation.status == Generation.Status.SUCCEEDED
    assert generation.poll_count >= 2


def test_defapi_results_may_be_data_uris(owner, make_account):
    generation = run_to_end(
        new_generation(owner, make_account("defapi"), "google/gempix2", prompt="x [sim:result_form=datauri]")
    )
    assert generation.status == Generation.Status.SUCCEEDED
    assert generation.images.get().mime_type == "image/png"
    assert generation.provider_cost == "0.500000"


def test_defapi_early_task_not_found_means_not_yet(owner, make_account):
    generation = run_to_end(
        new_generation(owner, make_account("defapi"), "google/gempix2", prompt="x [sim:notfound=0.6]")
    )
    assert generation.status == Generation.Status.SUCCEEDED


def test_apiframe_result_may_be_a_plain_url(owner, make_account):
    generation = run_to_end(
        new_generation(owner, make_account("apiframe"), "nano-banana-2", prompt="x [sim:result_shape=url]")
    )
    assert generation.status == Generation.Status.SUCCEEDED
    assert generation.provider_cost == "6"


def test_balances_are_read_where_the_vendor_has_an_endpoint(make_account):
    assert float(make_account("crun").adapter().balance()) > 0
    assert float(make_account("apiframe").adapter().balance()) > 0
    for kind in ("nanophoto", "defapi", "gemini"):
        assert make_account(kind).adapter().balance() is None


# --- apiframe webhook signatures --------------------------------------------------


def sign(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def test_apiframe_webhook_signatures_are_checked(make_account):
    adapter = make_account("apiframe").adapter()
    body = json.dumps({"event": "completed", "jobId": "j1"}).encode()
    key = hashlib.sha256(b"sim-key")

    assert adapter.verify_callback({"X-Webhook-Signature": sign(key.digest(), body)}, body)
    assert adapter.verify_callback({"X-Webhook-Signature": "sha256=" + sign(key.hexdigest().encode(), body)}, body)
    assert not adapter.verify_callback({"X-Webhook-Signature": sign(key.digest(), body + b" ")}, body)
    assert not adapter.verify_callback({"X-Webhook-Signature": sign(b"sim-key", body)}, body)
    assert not adapter.verify_callback({}, body)
