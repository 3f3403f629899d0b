"""Result images are judged by their content, not their name or the server's word."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from nanoweb.lib import images

pytestmark = pytest.mark.portable


def encoded(size=(64, 48), kind="PNG", mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "teal").save(out, kind)
    return out.getvalue()


def noisy(kind: str) -> bytes:
    """A picture whose data fills the file, so that cutting it cuts pixels."""
    out = io.BytesIO()
    Image.effect_noise((256, 192), 80).convert("RGB").save(out, kind)
    return out.getvalue()


CHECKS = [images.check, images.check_complete]


@pytest.mark.parametrize("check", CHECKS, ids=["decoded", "whole file"])
@pytest.mark.parametrize("kind, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_complete_images_are_accepted_with_their_facts(check, kind, mime):
    checked = check(encoded(kind=kind))
    assert (checked.width, checked.height, checked.mime_type) == (64, 48, mime)
    assert len(checked.sha256) == 64
    assert check(noisy(kind)).width == 256, "the facts of the full image, not of a draft"


@pytest.mark.parametrize("check", CHECKS, ids=["decoded", "whole file"])
@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"<html><body>Not Found</body></html>", "not a readable image"),
        (encoded()[:-40], "not a readable image"),
        (noisy("PNG")[:-3000], "not a readable image"),
        (noisy("JPEG")[:-3000], "not a readable image"),
        (noisy("WEBP")[:-3000], "not a readable image"),
        (encoded(kind="GIF", mode="P"), "unsupported image type GIF"),
    ],
    ids=["empty", "html page", "truncated", "cut png", "cut jpeg", "cut webp", "gif"],
)
def test_broken_or_foreign_files_are_refused(check, data, reason):
    with pytest.raises(images.InvalidImage, match=reason):
        check(data)


def test_a_damaged_png_is_found_by_its_checksums_without_decoding():
    data = bytearray(noisy("PNG"))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(images.InvalidImage):
        images.check_complete(bytes(data))


def test_a_decompression_bomb_is_refused_before_decoding(settings):
    settings.MAX_IMAGE_PIXELS = 100_000
    with pytest.raises(images.InvalidImage, match="too many pixels"):
        images.check(encoded(size=(1000, 1000), mode="1"))


def test_thumbnails_are_small_webp_keeping_the_shape():
    made = images.renditions(encoded(size=(2000, 1000)))
    with Image.open(io.BytesIO(made.thumbnail)) as image:
        assert image.format == "WEBP"
        assert image.size == (512, 256)
