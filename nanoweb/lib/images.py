"""Checking image bytes with Pillow and making thumbnails."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps

FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp")}
THUMBNAIL_SIZE = (512, 512)


class InvalidImage(ValueError):
    pass


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    width: int
    height: int
    mime_type: str
    extension: str
    sha256: str


def _open(data: bytes) -> Image.Image:
    """Decode the whole image once, refusing what is not a complete PNG, JPEG or WebP
    within the pixel limit. Judged by content, never by name or declared type."""
    if not data:
        raise InvalidImage("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > settings.MAX_IMAGE_PIXELS:
                raise InvalidImage(f"the image has too many pixels ({width}×{height})")
            if image.format not in FORMATS:
                raise InvalidImage(f"unsupported image type {image.format}")
            image.load()  # a truncated or corrupt file fails here
            return image
    except InvalidImage:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"the image has too many pixels: {exc}") from exc
    except Exception as exc:  # Pillow raises many types for broken files
        raise InvalidImage(f"not a readable image: {exc}") from exc


def _facts(image: Image.Image, data: bytes) -> dict:
    mime_type, extension = FORMATS[image.format]
    return {
        "width": image.width, "height": image.height, "mime_type": mime_type, "extension": extension,
        "sha256": hashlib.sha256(data).hexdigest(),
    }  # fmt: skip


def check(data: bytes) -> CheckedImage:
    with _open(data) as image:
        return CheckedImage(data=data, **_facts(image, data))


@dataclass(frozen=True)
class PreparedImage(CheckedImage):
    thumbnail: bytes = b""


def prepare(data: bytes) -> PreparedImage:
    """Check the image and make its thumbnail from the one decode."""
    with _open(data) as image:
        return PreparedImage(data=data, thumbnail=_thumbnail(image), **_facts(image, data))


def _thumbnail(image: Image.Image) -> bytes:
    small = ImageOps.exif_transpose(image)
    small.thumbnail(THUMBNAIL_SIZE, Image.Resampling.LANCZOS, reducing_gap=2.0)
    if small.mode not in ("RGB", "RGBA"):
        small = small.convert("RGBA" if "A" in small.getbands() else "RGB")
    out = io.BytesIO()
    small.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()
