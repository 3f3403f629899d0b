"""Images are cached by the viewer's browser but checked again on every use (ETag), so one made
private or deleted stops showing at once, instead of staying in browsers for a day."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from nanoweb.studio.models import Generation
from tests.test_reference_privacy import finished


@pytest.fixture
def urls(owner, teammate, make_account) -> tuple[Generation, list[str]]:
    gemini = make_account("gemini")
    earlier = finished(owner, gemini, "cached", "red")
    later = finished(teammate, gemini, "made from it", "blue", reference_results=[earlier.images.get()])
    image = earlier.images.get()
    return earlier, [
        reverse("image_original", args=[image.pk]),
        reverse("image_thumbnail", args=[image.pk]),
        reverse("generation_reference", args=[later.pk, 0]),
    ]


def test_images_are_revalidated_with_an_etag_and_never_kept_blindly(client, teammate, urls):
    client.force_login(teammate)
    for url in urls[1]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Cache-Control"] == "private, no-cache", url
        assert response["ETag"].startswith('"'), url
        again = client.get(url, HTTP_IF_NONE_MATCH=response["ETag"])
        assert again.status_code == 304 and again["ETag"] == response["ETag"], url


def test_an_image_made_private_is_refused_even_to_a_browser_holding_a_copy(owner, teammate, urls):
    earlier, paths = urls
    viewer = Client()
    viewer.force_login(teammate)
    etags = {path: viewer.get(path)["ETag"] for path in paths}
    Generation.objects.filter(pk=earlier.pk).update(private=True)
    for path in paths:
        assert viewer.get(path, HTTP_IF_NONE_MATCH=etags[path]).status_code == 404, path
    owner_client = Client()
    owner_client.force_login(owner)
    assert all(owner_client.get(path, HTTP_IF_NONE_MATCH=etags[path]).status_code == 304 for path in paths)


def test_the_signed_reference_link_is_not_stored_by_caches(client, urls, settings):
    from nanoweb.studio import references
    from nanoweb.studio.models import ReferenceImage

    settings.PUBLIC_BASE_URL = "https://studio.example"
    link = references.signed_url(ReferenceImage.objects.get()).removeprefix("https://studio.example")
    assert client.get(link)["Cache-Control"] == "private, no-store"
