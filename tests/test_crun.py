"""The crun.ai adapter against the simulator: the bytes on the wire and every answer mapped."""

from __future__ import annotations

import pytest

from nanoweb.providers.base import ErrorKind, GenerationRequest, ProviderError, State
from nanoweb.providers.crun import CrunAdapter
from nanoweb.studio.jobs import pipeline
from nanoweb.studio.models import Generation
from tests.conftest import wait_for

pytestmark = pytest.mark.portable


@pytest.fixture
def adapter(simulator):
    return CrunAdapter(base_url=simulator.base_url + "/crun", api_key="sim-key")


def last_request(simulator):
    return simulator.requests[-1]


def test_create_sends_the_documented_request(adapter, simulator):
    request = GenerationRequest(
        prompt="a fox", model="google/nano-banana-2", aspect_ratio="21:9", resolution="4K",
        output_format="jpg", google_search=True, callback_url="https://studio.example/hooks/abc",
    )  # fmt: skip
    submitted = adapter.create(request)

    sent = last_request(simulator)
    assert (sent.method, sent.path) == ("POST", "/crun/api/v1/client/job/CreateTask")
    assert sent.headers["x-api-key"] == "sim-key"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "model": "google/nano-banana-2",
        "callback_url": "https://studio.example/hooks/abc",
        "input": {"prompt": "a fox", "aspect_ratio": "21:9", "resolution": "4K", "output_format": "jpg",
                  "google_search": True},
    }  # fmt: skip
    assert submitted.task_id in simulator.jobs


def test_what_a_channel_ignores_is_left_out_by_its_catalogue_row(owner, crun_account):
    for model, sent in (("google/nano-banana-2-v2", ("2K", "", False)), ("google/nano-banana-v2", ("", "", False))):
        job = Generation.objects.create(owner=owner, prompt="p", account=crun_account, model=model,
                                        resolution="2K", output_format="png", google_search=True)  # fmt: skip
        request = pipeline.provider_request(job)
        assert (request.resolution, request.output_format, request.google_search) == sent


def test_nano_banana_v1_gets_jpeg_spelled_its_way(adapter, simulator):
    adapter.create(GenerationRequest(prompt="p", model="google/nano-banana", output_format="jpg"))
    assert last_request(simulator).json()["input"] == {"prompt": "p", "output_format": "jpeg"}


def test_status_follows_pending_running_success(adapter, simulator):
    simulator.latency = 0.5
    task_id = adapter.create(GenerationRequest(prompt="p", model="google/nano-banana", output_format="jpeg")).task_id

    first = adapter.status(task_id)
    sent = last_request(simulator)
    assert (sent.method, sent.path, sent.query) == ("GET", "/crun/api/v1/client/job/TaskInfo", {"task_id": task_id})
    assert first.state in (State.QUEUED, State.RUNNING)
    done = wait_for(lambda: (s := adapter.status(task_id)).state == State.SUCCEEDED and s)
    assert done.images[0].url.endswith(".jpg")
    assert done.provider_cost == "6"


def test_a_failed_task_carries_the_providers_reason(adapter):
    task_id = adapter.create(GenerationRequest(prompt="[sim:fail=nsfw filter] p", model="google/nano-banana")).task_id
    failed = wait_for(lambda: (s := adapter.status(task_id)).state == State.FAILED and s)
    assert failed.error.kind == ErrorKind.GENERATION_FAILED
    assert "nsfw filter" in failed.error.detail


@pytest.mark.parametrize(
    "call, kind",
    [
        (
            lambda a: CrunAdapter(base_url=a.base_url, api_key="nope").create(
                GenerationRequest("p", "google/nano-banana")
            ),
            ErrorKind.AUTH,
        ),
        (lambda a: a.create(GenerationRequest("p", "google/nano-banana", aspect_ratio="1:8")), ErrorKind.INVALID_INPUT),
        (lambda a: a.status("no-such-task"), ErrorKind.NOT_FOUND),
        (lambda a: CrunAdapter(base_url=a.base_url + "/missing", api_key="k").status("x"), ErrorKind.MALFORMED),
    ],
    ids=["bad key", "unsupported ratio", "unknown task", "html 404 page"],
)
def test_errors_map_to_the_taxonomy(adapter, call, kind):
    with pytest.raises(ProviderError) as raised:
        call(adapter)
    assert raised.value.kind == kind
    assert raised.value.retryable is False


def test_an_unreachable_provider_is_a_retryable_outage():
    adapter = CrunAdapter(base_url="http://127.0.0.1:9", api_key="k")
    with pytest.raises(ProviderError) as raised:
        adapter.status("x")
    assert raised.value.kind == ErrorKind.UNAVAILABLE and raised.value.retryable


def test_the_balance_endpoint_is_read(adapter):
    assert float(adapter.balance()) > 0
