"""Checking image bytes with Pillow, and making the display rendition and the thumbnail."""

from __future__ import annotations

import ctypes
import hashlib
import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp")}
THUMBNAIL_SIZE = (512, 512)
DISPLAY_SIZE = (2048, 2048)  # the detail page and the lightbox; the original only downloads


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
    image = _header(data)
    try:
        image.load()  # a truncated or corrupt file fails here
    except Exception as exc:  # Pillow raises many types for broken files
        raise InvalidImage("not a readable image (it may be damaged or cut short)") from exc
    return image


def _header(data: bytes) -> Image.Image:
    """The image with only its header read: its type and size, no pixels decoded yet."""
    if not data:
        raise InvalidImage("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise InvalidImage("the image has too many pixels") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("not a readable image") from exc
    except Exception as exc:
        raise InvalidImage("not a readable image (it may be damaged or cut short)") from exc
    width, height = image.size
    if width * height > settings.MAX_IMAGE_PIXELS:
        raise InvalidImage(f"the image has too many pixels ({width}×{height})")
    if image.format not in FORMATS:
        raise InvalidImage(f"unsupported image type {image.format}")
    return image


def pixels(data: bytes) -> int:
    """Width × height, read from the header alone: what decoding the image would cost.
    Refuses, as `check` would, what is not a PNG, JPEG or WebP within the pixel limit."""
    with _header(data) as image:
        return image.width * image.height


def _facts(image: Image.Image, data: bytes) -> dict:
    mime_type, extension = FORMATS[image.format or ""]
    return {
        "width": image.width, "height": image.height, "mime_type": mime_type, "extension": extension,
        "sha256": hashlib.sha256(data).hexdigest(),
    }  # fmt: skip


def check(data: bytes) -> CheckedImage:
    """An upload, checked by decoding it in full, and kept without whatever follows the image in
    its file (a video a phone appended, or padding meant to fill disks and workers)."""
    with _open(data) as image:
        data = data[: image_end(data, image.format or "")]
        return CheckedImage(data=data, **_facts(image, data))


def image_end(data: bytes, format: str) -> int:
    """Where the image ends in `data` (a PNG's IEND chunk, a WebP's RIFF length, a JPEG's end of
    image marker); len(data) when the structure does not say."""
    end = {"PNG": _png_end, "WEBP": _webp_end, "JPEG": _jpeg_end}[format](data)
    return min(end, len(data)) if end else len(data)


def _png_end(data: bytes) -> int:
    position = 8
    while position + 8 <= len(data):
        length, kind = int.from_bytes(data[position : position + 4], "big"), data[position + 4 : position + 8]
        position += 12 + length
        if kind == b"IEND":
            return position
    return 0


def _webp_end(data: bytes) -> int:
    return int.from_bytes(data[4:8], "little") + 8


def _jpeg_end(data: bytes) -> int:
    """After the segments (each says its length), entropy-coded data runs to the next marker
    (0xFF not followed by 0x00 or a restart marker); the image ends after EOI (FFD9)."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return 0
        marker = data[position + 1]
        if marker == 0xD9:
            return position + 2
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:  # start of scan: skip its entropy-coded data
            while (position := data.find(b"\xff", position)) != -1 and position + 1 < len(data):
                following = data[position + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    position += 1 if following == 0xFF else 2
                    continue
                break
            if position == -1:
                return 0
    return 0


def check_complete(data: bytes) -> CheckedImage:
    """A provider's result, checked without decoding every pixel: a PNG, JPEG or WebP within
    the pixel limit whose file is whole (every PNG chunk's checksum, every JPEG scan read at an
    eighth of the size, a WebP as long as its header says). That is what a cut or damaged
    download looks like; the renditions decode it fully a moment later. A full decode costs
    ten to a hundred times more, and a burst of results waits on it."""
    image = _header(data)
    facts = _facts(image, data)  # before the JPEG draft shrinks it
    try:
        if image.format == "PNG":
            image.verify()
        elif image.format == "JPEG":
            image.draft("RGB", (image.width // 8, image.height // 8))
            image.load()
        elif int.from_bytes(data[4:8], "little") + 8 > len(data):  # WebP: a RIFF file says its length
            raise ValueError("the WebP file is shorter than its header says")
    except Exception as exc:  # Pillow raises many types for broken files
        raise InvalidImage("not a readable image (it may be damaged or cut short)") from exc
    finally:
        image.close()
    return CheckedImage(data=data, **facts)


@dataclass(frozen=True)
class Renditions:
    display: bytes
    thumbnail: bytes


def renditions(data: bytes) -> Renditions:
    """The display rendition and the thumbnail, from one full decode (which also proves every
    pixel readable)."""
    with _open(data) as image:
        viewable = _viewable(image)
        display = _shrink_to_webp(viewable, DISPLAY_SIZE, quality=85)
        thumbnail = _shrink_to_webp(viewable, THUMBNAIL_SIZE, quality=80)  # from the display size: cheaper
        return Renditions(display=display, thumbnail=thumbnail)


def _viewable(image: Image.Image) -> Image.Image:
    """Upright, in a mode WebP keeps (the same image when it already is: a 4K decode is 50 MB)."""
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode not in ("RGB", "RGBA"):
        return image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    return image


def _shrink_to_webp(image: Image.Image, size: tuple[int, int], quality: int) -> bytes:
    """Shrinks `image` in place (never enlarges) and encodes it as WebP."""
    # reducing_gap=1: box-reduce by whole factors first, then Lanczos for the rest;
    # ten times cheaper than Lanczos from full size, no visible difference at these sizes.
    image.thumbnail(size, Image.Resampling.LANCZOS, reducing_gap=1.0)
    out = io.BytesIO()
    image.save(out, "WEBP", quality=quality, method=2)  # method 3+ costs twice the CPU for a few % of bytes
    return out.getvalue()


def limit_heap_growth() -> None:
    """Return big image buffers to the system when they are freed (glibc only).

    glibc raises its mmap threshold after large frees and gives every thread its own
    arena, so a worker that decoded a few 4K images in parallel threads keeps hundreds of
    MB it no longer uses. A fixed threshold and two arenas keep its RSS near what it uses.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1024 * 1024)  # M_MMAP_THRESHOLD: allocations ≥ 1 MB are mmapped and unmapped on free
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune
