"""Uploads are counted and sized before any is decoded, and the decoding one request may cause
is bounded, so a flood of large images is refused at once, with the reason next to the field."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from nanoweb.studio.models import Generation, ReferenceImage
from tests.test_references import png, post

pytestmark = pytest.mark.portable

GEMINI_25 = "gemini-2.5-flash-image"  # takes at most 3 reference images


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """6300×6300 pixels (40 Mpx, just within the per-image limit) in about 115 KB."""
    out = io.BytesIO()
    Image.new("RGB", (6300, 6300)).save(out, "PNG")
    return out.getvalue()


def copies(data: bytes, count: int) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(f"huge-{n}.png", data, content_type="image/png") for n in range(count)]


def field_errors(html: str) -> str:
    """The text of the reference field's box: where the message must be."""
    match = re.search(r'<div class="field references has-error" id="references">(.*?)<div class="actions"', html, re.S)
    assert match, "the reference field shows no error"
    return match.group(1)


def test_a_hundred_huge_images_are_refused_by_count_before_any_is_decoded(owner_client, make_account, huge_png):
    """The attack: 100 copies of a 6300×6300 PNG for a model that takes 3. The first copy is cut
    short, so decoding anything before counting would answer "not a readable image" instead."""
    files = [SimpleUploadedFile("cut.png", huge_png[:-100]), *copies(huge_png, 99)]
    response = post(owner_client, make_account("gemini"), GEMINI_25, files)
    assert "This model takes at most 3 reference images; you gave 100." in field_errors(response.text)
    assert not Generation.objects.exists() and not ReferenceImage.objects.exists()


def test_the_pixels_decoded_for_one_request_are_bounded(owner_client, make_account, huge_png, settings):
    settings.MAX_UPLOAD_PIXELS = 100_000_000
    response = post(owner_client, make_account("gemini"), GEMINI_25, copies(huge_png, 3))
    assert "These images have 119 million pixels together; one submission takes at most 100 million." in field_errors(
        response.text
    )
    assert not Generation.objects.exists()


def test_every_file_is_sized_before_any_is_decoded(owner_client, make_account, settings):
    settings.MAX_UPLOAD_BYTES = 5000
    small, large = png((8, 8)), png((400, 400), color="white") + b"\0" * 6000
    files = [SimpleUploadedFile("not-an-image.png", b"plain text"), SimpleUploadedFile("large.png", large)]
    response = post(owner_client, make_account("gemini"), GEMINI_25, files)
    errors = field_errors(response.text)
    assert "large.png is too large" in errors and "not-an-image.png" not in errors
    assert (
        post(
            owner_client, make_account("gemini", name="g2"), GEMINI_25, [SimpleUploadedFile("s.png", small)]
        ).status_code
        == 201
    )


def test_images_within_the_limits_are_accepted(owner_client, make_account):
    files = [SimpleUploadedFile(f"{n}.png", png(color=color)) for n, color in enumerate(["red", "green", "blue"])]
    assert post(owner_client, make_account("gemini"), GEMINI_25, files).status_code == 201
    assert ReferenceImage.objects.count() == 3


def test_more_files_than_any_form_takes_are_refused_before_the_view(owner_client, make_account):
    files = [SimpleUploadedFile(f"{n}.png", png((8, 8))) for n in range(101)]
    assert post(owner_client, make_account("gemini"), GEMINI_25, files).status_code == 400
    assert not Generation.objects.exists()
