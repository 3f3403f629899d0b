"""Bad input never hurts: every refusal names the field, and nothing is stored."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from nanoweb.studio.models import Generation

pytestmark = pytest.mark.portable


@pytest.fixture
def valid(crun_account):
    return {
        "prompt": "a red bicycle",
        "model": "Nano Banana 2",
        "routing": "auto",
        "aspect_ratio": "1:1",
        "resolution": "2K",
        "output_format": "jpg",
    }


def submit(client, data, htmx=True):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(reverse("generate"), data, **headers)


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"prompt": "   "}, "prompt", "Write a prompt"),
        ({"prompt": "x" * 20_001}, "prompt", "at most 20000 characters"),
        ({"aspect_ratio": "7:3"}, "aspect_ratio", "7:3 is not offered by this model."),
        ({"resolution": "8K"}, "resolution", "8K is not offered by this model."),
        ({"output_format": "gif"}, "output_format", "gif is not offered by this model."),
        ({"model": "Nano Banana", "google_search": "on"}, "google_search", "cannot ground with Google"),
        ({"model": "Nano Banana", "resolution": "2K"}, "resolution", "2K is not offered by this model."),
        ({"model": "dall-e-3"}, "model", "dall-e-3 is not available: choose another model."),
        ({"routing": "999"}, "routing", "That account is not available"),
        ({"routing": "<script>"}, "routing", "That account is not available"),
    ],
)
def test_bad_input_is_refused_next_to_the_field_and_nothing_is_stored(owner_client, valid, change, field, message):
    response = submit(owner_client, {**valid, **change})

    assert response.status_code == 200
    assert response["HX-Retarget"] == "#generate-form"
    assert response["HX-Reswap"] == "outerHTML"
    shown = re.search(rf'<ul class="errorlist" id="id_{field}_error"><li>([^<]*)</li>', response.text)
    # An option this model does not have is not on the page: its error stands in the options box.
    unoffered = re.search(rf'<div class="alert" role="alert" id="id_{field}_error">([^<]*)</div>', response.text)
    error = shown or unoffered
    assert error and message in error[1], response.text
    if shown:
        assert re.search(rf'aria-describedby="[^"]*id_{field}_error"', response.text)
    assert Generation.objects.count() == 0


def test_a_disabled_account_cannot_be_used(owner_client, valid, crun_account):
    crun_account.enabled = False
    crun_account.save()

    response = submit(owner_client, {**valid, "routing": crun_account.pk})

    assert "Nano Banana 2 is not available" in response.text
    assert Generation.objects.count() == 0


def test_without_javascript_errors_rerender_the_page_and_success_redirects(owner_client, valid):
    refused = submit(owner_client, {**valid, "prompt": ""}, htmx=False)
    assert refused.status_code == 400
    assert "Write a prompt" in refused.text and "<html" in refused.text

    accepted = submit(owner_client, valid, htmx=False)
    assert accepted.status_code == 302 and accepted["Location"] == reverse("studio")
    assert Generation.objects.get().resolution == "2K"


def test_options_the_model_lacks_are_not_stored_even_if_posted_empty(owner_client, valid):
    submit(owner_client, {**valid, "model": "Nano Banana", "resolution": "", "output_format": ""})

    generation = Generation.objects.get()
    assert (generation.resolution, generation.output_format, generation.aspect_ratio) == ("", "", "1:1")


def test_a_prompt_is_shown_as_text_never_as_html(owner_client, valid):
    submit(owner_client, {**valid, "prompt": "<img src=x onerror=alert(1)>"})

    job = Generation.objects.get()
    for url in (reverse("studio"), reverse("gallery") + "?status=running", reverse("generation_detail", args=[job.pk])):
        page = owner_client.get(url)
        assert "<img src=x onerror" not in page.text, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text, url


def test_the_form_offers_only_what_the_chosen_model_supports(owner_client, crun_account):
    nb2 = owner_client.get(reverse("form_options"), {"model": "Nano Banana 2"})
    assert 'name="resolution"' in nb2.text and 'value="4K"' in nb2.text
    assert 'name="google_search"' in nb2.text and 'value="21:9"' in nb2.text

    v1 = owner_client.get(reverse("form_options"), {"model": "Nano Banana"})
    assert 'name="resolution"' not in v1.text
    assert 'name="google_search"' not in v1.text
    assert 'value="1:8"' not in v1.text


def test_a_second_channel_is_another_row_of_its_model_not_a_model(owner_client, crun_account):
    page = owner_client.get(reverse("studio"))
    assert "channel" not in page.text
    models = page.context["form"].fields["model"].choices
    assert models == [("Nano Banana", "Nano Banana"), ("Nano Banana 2", "Nano Banana 2")]

    data = {"prompt": "a kite", "model": "Nano Banana 2", "routing": "auto", "aspect_ratio": "1:1", "resolution": "2K"}
    crun_account.catalogue.filter(model_id="google/nano-banana-2-v2").update(
        prices={"1K": "0.03", "2K": "0.05", "4K": "0.09"}
    )
    submit(owner_client, {**data, "google_search": "on"})  # only the main channel grounds with Search
    submit(owner_client, data)  # the cheaper channel fits
    assert list(Generation.objects.order_by("pk").values_list("model", flat=True)) == [
        "google/nano-banana-2", "google/nano-banana-2-v2",
    ]  # fmt: skip


def test_deprecated_models_come_after_current_ones(owner_client, make_account):
    make_account("gemini")
    names = [label for _, label in owner_client.get(reverse("studio")).context["form"].fields["model"].choices]
    deprecated = [name for name in names if name.endswith("(deprecated)")]
    assert deprecated and names[-len(deprecated) :] == deprecated, names


def test_the_studio_page_lists_only_my_recent_jobs(owner_client, owner, teammate, crun_account):
    Generation.objects.create(owner=owner, prompt="mine: a fox", account=crun_account, model="google/nano-banana")
    Generation.objects.create(owner=teammate, prompt="theirs: a bear", account=crun_account, model="google/nano-banana")

    page = owner_client.get(reverse("studio"))

    assert "mine: a fox" in page.text
    assert "theirs: a bear" not in page.text


def test_the_form_starts_with_my_last_choices(owner_client, owner, make_account):
    gemini = make_account("gemini")
    Generation.objects.create(
        owner=owner, prompt="p", account=gemini, model="gemini-2.5-flash-image", model_name="Nano Banana",
        automatic=False, aspect_ratio="21:9",
    )  # fmt: skip

    page = owner_client.get(reverse("studio")).text

    assert '<option value="auto" selected>Automatic</option>' in page, "routing starts Automatic at every visit"
    assert '<option value="Nano Banana" selected>Nano Banana (deprecated)</option>' in page
    assert '<option value="21:9" selected>' in page
