"""Result images are judged by their content, not their name or the server's word."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from nanoweb.lib import images


def encoded(size=(64, 48), kind="PNG", mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "teal").save(out, kind)
    return out.getvalue()


@pytest.mark.parametrize("kind, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_complete_images_are_accepted_with_their_facts(kind, mime):
    checked = images.check(encoded(kind=kind))
    assert (checked.width, checked.height, checked.mime_type) == (64, 48, mime)
    assert len(checked.sha256) == 64


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"<html><body>Not Found</body></html>", "not a readable image"),
        (encoded()[:-40], "not a readable image"),
        (encoded(kind="GIF", mode="P"), "unsupported image type GIF"),
    ],
    ids=["empty", "html page", "truncated", "gif"],
)
def test_broken_or_foreign_files_are_refused(data, reason):
    with pytest.raises(images.InvalidImage, match=reason):
        images.check(data)


def test_a_decompression_bomb_is_refused_before_decoding(settings):
    settings.MAX_IMAGE_PIXELS = 100_000
    with pytest.raises(images.InvalidImage, match="too many pixels"):
        images.check(encoded(size=(1000, 1000), mode="1"))


def test_thumbnails_are_small_webp_keeping_the_shape():
    prepared = images.prepare(encoded(size=(2000, 1000)))
    assert (prepared.width, prepared.height) == (2000, 1000)
    with Image.open(io.BytesIO(prepared.thumbnail)) as image:
        assert image.format == "WEBP"
        assert image.size == (512, 256)
