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


def check(data: bytes) -> CheckedImage:
    """Accept only a complete PNG, JPEG or WebP within the pixel limit, judged by its content."""
    if not data:
        raise InvalidImage("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                kind = probe.format
                width, height = probe.size
                if width * height > settings.MAX_IMAGE_PIXELS:
                    raise InvalidImage(f"the image has too many pixels ({width}×{height})")
                if kind not in FORMATS:
                    raise InvalidImage(f"unsupported image type {kind}")
                probe.verify()
            # verify() misses truncated pixel data; decoding fully does not.
            with Image.open(io.BytesIO(data)) as full:
                full.load()
    except InvalidImage:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"the image has too many pixels: {exc}") from exc
    except Exception as exc:  # Pillow raises many types for broken files
        raise InvalidImage(f"not a readable image: {exc}") from exc
    mime_type, extension = FORMATS[kind]
    return CheckedImage(data, width, height, mime_type, extension, hashlib.sha256(data).hexdigest())


def thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", THUMBNAIL_SIZE)  # JPEG: decode at reduced scale, much faster
        image = ImageOps.exif_transpose(image)
        image.thumbnail(THUMBNAIL_SIZE, Image.Resampling.LANCZOS, reducing_gap=2.0)
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        out = io.BytesIO()
        image.save(out, "WEBP", quality=80, method=4)
        return out.getvalue()
