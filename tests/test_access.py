"""Who may reach what: anonymous users go to login; other members' jobs are not found."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from nanoweb.studio.models import GeneratedImage, Generation


@pytest.fixture
def job(owner, crun_account):
    generation = Generation.objects.create(
        owner=owner, prompt="private-ish", account=crun_account, model="google/nano-banana"
    )
    image = GeneratedImage(generation=generation, width=1, height=1, bytes=3, sha256="0" * 64, mime_type="image/png")
    image.original.save("x.png", ContentFile(b"png"), save=False)
    image.thumbnail.save("x.webp", ContentFile(b"web"), save=False)
    image.save()
    return generation


def pages(job):
    image = job.images.get()
    return [
        reverse("studio"),
        reverse("generation_detail", args=[job.pk]),
        reverse("generation_card", args=[job.pk]),
        reverse("image_original", args=[image.pk]),
        reverse("image_thumbnail", args=[image.pk]),
        reverse("image_display", args=[image.pk]),
        reverse("form_options"),
    ]


def test_anonymous_visitors_are_sent_to_sign_in(client, job):
    for url in pages(job) + [
        reverse("gallery"),
        reverse("prompt_library"),
        reverse("credit_review"),
        reverse("download_zip"),
        reverse("board_list"),
        reverse("board_add"),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url
    posts = [reverse("generate"), reverse("prompt_library"), reverse("board_list"), reverse("board_add")] + [
        reverse(name, args=[job.pk]) for name in ("generation_cancel", "rate", "toggle_private", "delete_generation")
    ]
    for url in posts:
        assert client.post(url, {"prompt": "x", "pick": [job.pk]})["Location"].startswith(reverse("login")), url
    job.refresh_from_db()
    assert (Generation.objects.count(), job.status, job.private, job.deleted_at) == (1, "queued", False, None)


@pytest.mark.parametrize(
    "private, user_fixture, allowed",
    [(True, "owner", True), (True, "staff", True), (True, "teammate", False), (False, "teammate", True)],
)
def test_private_jobs_are_for_their_owner_and_staff_and_shared_ones_for_the_team(
    client, job, request, private, user_fixture, allowed
):
    Generation.objects.filter(pk=job.pk).update(private=private)
    client.force_login(request.getfixturevalue(user_fixture))
    for url in pages(job)[1:6]:  # detail, card, original file, thumbnail, display
        assert client.get(url).status_code == (200 if allowed else 404), url


def test_the_health_check_and_provider_callbacks_need_no_login(client, job):
    assert client.get(reverse("healthz")).status_code in (200, 503)
    assert client.post(reverse("provider_callback", args=["not-a-token"])).status_code == 404
    assert client.post(reverse("provider_callback", args=[job.callback_token])).status_code == 200


def test_posts_without_a_csrf_token_are_refused(owner, crun_account):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    response = strict.post(reverse("generate"), {"prompt": "x", "routing": crun_account.pk})
    assert response.status_code == 403
    assert Generation.objects.count() == 0


def test_the_api_key_never_reaches_a_page(client, django_user_model, crun_account):
    crun_account.api_key = "sk-very-secret-key"
    crun_account.save()
    client.force_login(django_user_model.objects.create_superuser("root", password="x-long-password-1"))
    for url in [
        reverse("studio"),
        reverse("admin:providers_provideraccount_change", args=[crun_account.pk]),
        reverse("admin:providers_provideraccount_changelist"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "sk-very-secret-key" not in response.text, url


def test_saving_the_account_in_the_admin_with_an_empty_key_keeps_the_key(client, django_user_model, crun_account):
    admin = django_user_model.objects.create_superuser("root", password="x-long-password-1")
    client.force_login(admin)
    url = reverse("admin:providers_provideraccount_change", args=[crun_account.pk])
    data = {
        "name": "renamed",
        "kind": "crun",
        "base_url": crun_account.base_url,
        "api_key": "",
        "enabled": "on",
        "rate_limit": "5",
        "priority": "100",
        "catalogue-TOTAL_FORMS": "0",
        "catalogue-INITIAL_FORMS": "0",
    }

    assert client.post(url, data).status_code == 302
    crun_account.refresh_from_db()
    assert (crun_account.name, crun_account.api_key) == ("renamed", "sim-key")
